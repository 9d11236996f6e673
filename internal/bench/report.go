package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of Bench: the herd's result, the reference's when
// one ran, and their ratios. Its JSON form is what `herd bench -json` prints.
type Report struct {
	Workload    Workload `json:"workload"`
	Mode        Mode     `json:"mode"`
	Pipeline    int      `json:"pipeline"`
	Connections int      `json:"connections"`
	// Rate is the open-loop rate in requests per second; 0: closed loop.
	Rate float64 `json:"rate"`
	// MixIAMAT is the IAMAT share of the Mix workload.
	MixIAMAT *float64 `json:"mix_iamat,omitempty"`
	// DurationS and RequestLimit are the bounds the run had (0: none).
	DurationS    float64 `json:"duration_s"`
	RequestLimit int64   `json:"request_limit"`
	// WarmupS is the length of the unmeasured run before each measured one.
	WarmupS float64 `json:"warmup_s,omitempty"`
	Clients int     `json:"clients"`
	// Targets are the loaded addresses; From and To those of Propagation.
	Targets []string `json:"targets,omitempty"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	// Notes say how the herd was set up (filled in by the caller).
	Notes []string `json:"notes,omitempty"`

	Herd      *Result `json:"herd"`
	Reference *Result `json:"reference,omitempty"`
	Ratio     *Ratio  `json:"ratio,omitempty"`
}

// Ratio compares the herd with the reference ceiling measured in the same
// invocation. Throughput is herd/reference (1 is the ceiling, higher is
// better); each latency is herd/reference (1 is the ceiling, lower is better).
type Ratio struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P90        float64 `json:"p90"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p99.9"`
	Max        float64 `json:"max"`
}

func newReport(o *Options) *Report {
	r := &Report{
		Workload: o.Workload, Mode: o.Mode, Pipeline: o.Pipeline, Connections: o.Conns,
		Rate: o.Rate, DurationS: o.Duration.Seconds(), RequestLimit: o.Requests, Clients: o.Clients,
		WarmupS: o.Warmup.Seconds(),
	}
	if o.Workload == Mix {
		m := o.MixIAMAT
		r.MixIAMAT = &m
	}
	if o.Workload == Propagation {
		r.From, r.To = o.From, o.To
	} else {
		r.Targets = slices.Clone(o.Targets)
	}
	return r
}

func ratioOf(h, ref *Result) *Ratio {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	l, rl := h.Latency, ref.Latency
	return &Ratio{
		Throughput: div(h.Throughput, ref.Throughput),
		P50:        div(float64(l.P50), float64(rl.P50)),
		P90:        div(float64(l.P90), float64(rl.P90)),
		P99:        div(float64(l.P99), float64(rl.P99)),
		P999:       div(float64(l.P999), float64(rl.P999)),
		Max:        div(float64(l.Max), float64(rl.Max)),
	}
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Describe returns the one-line summary of the run's parameters.
func (r *Report) Describe() string {
	var parts []string
	w := string(r.Workload)
	if r.MixIAMAT != nil {
		w = fmt.Sprintf("mix (%.0f%% IAMAT)", *r.MixIAMAT*100)
	}
	parts = append(parts, w, string(r.Mode))
	if r.Pipeline > 1 {
		parts = append(parts, fmt.Sprintf("pipeline %d", r.Pipeline))
	}
	parts = append(parts, plural(r.Connections, "connection"))
	if r.Workload == Propagation {
		parts[len(parts)-1] = plural(r.Connections, "prober")
	}
	if r.Rate > 0 {
		parts = append(parts, fmt.Sprintf("open loop at %g/s", r.Rate))
	} else {
		parts = append(parts, "closed loop")
	}
	bound := fmt.Sprintf("%gs", r.DurationS)
	if r.RequestLimit > 0 {
		unit := "requests"
		if r.Workload == Propagation {
			unit = "samples"
		}
		bound = fmt.Sprintf("%d %s or %s", r.RequestLimit, unit, bound)
	}
	if r.WarmupS > 0 {
		bound += fmt.Sprintf(" after %gs of warm-up", r.WarmupS)
	}
	parts = append(parts, bound)
	if r.Workload != Propagation {
		parts = append(parts, plural(r.Clients, "client"))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// WriteText writes r for people: the parameters, a table of the herd and
// reference figures and their ratios, and the errors.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "herd bench: %s\n", r.Describe())
	if r.Workload == Propagation {
		fmt.Fprintf(&b, "propagation from %s to %s\n", r.From, r.To)
	} else {
		fmt.Fprintf(&b, "targets: %s\n", strings.Join(r.Targets, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	b.WriteByte('\n')
	unit, per := "requests", "req/s"
	if r.Workload == Propagation {
		unit, per = "samples", "samples/s"
	}
	fmt.Fprintf(&b, "%-10s %10s %8s %11s %9s %9s %9s %9s %9s\n", "", unit, "errors", per, "p50", "p90", "p99", "p99.9", "max")
	row := func(res *Result) {
		if res == nil {
			return
		}
		l := res.Latency
		fmt.Fprintf(&b, "%-10s %10d %8d %11.0f %9s %9s %9s %9s %9s\n", res.Label, res.Requests, res.Errors, res.Throughput,
			FormatNanos(l.P50), FormatNanos(l.P90), FormatNanos(l.P99), FormatNanos(l.P999), FormatNanos(l.Max))
	}
	row(r.Reference)
	row(r.Herd)
	if q := r.Ratio; q != nil {
		fmt.Fprintf(&b, "%-10s %10s %8s %11.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n", "herd/ref", "", "", q.Throughput, q.P50, q.P90, q.P99, q.P999, q.Max)
	}
	b.WriteByte('\n')
	for _, res := range []*Result{r.Reference, r.Herd} {
		if res == nil {
			continue
		}
		if res.PollsPerSample > 0 {
			fmt.Fprintf(&b, "%s: %.1f WHATSAT polls per sample\n", res.Label, res.PollsPerSample)
		}
		if len(res.PlacesStatus) > 0 {
			var st []string
			for _, k := range slices.Sorted(maps.Keys(res.PlacesStatus)) {
				st = append(st, fmt.Sprintf("%s %d", k, res.PlacesStatus[k]))
			}
			fmt.Fprintf(&b, "%s: places status of WHATSAT replies: %s\n", res.Label, strings.Join(st, ", "))
		}
		if res.SendLag != nil {
			fmt.Fprintf(&b, "%s: sent late by p50 %s, p99 %s, max %s", res.Label, FormatNanos(res.SendLag.P50), FormatNanos(res.SendLag.P99), FormatNanos(res.SendLag.Max))
			if res.Unsent > 0 {
				fmt.Fprintf(&b, "; %d due requests never sent: the rate was not sustained", res.Unsent)
			}
			b.WriteByte('\n')
		}
		if res.Errors > 0 {
			var ks []string
			for _, k := range slices.Sorted(maps.Keys(res.ErrorKinds)) {
				ks = append(ks, fmt.Sprintf("%s %d", k, res.ErrorKinds[k]))
			}
			fmt.Fprintf(&b, "%s: %d errors (%s), for example:\n", res.Label, res.Errors, strings.Join(ks, ", "))
			for _, s := range res.ErrorSamples {
				fmt.Fprintf(&b, "  %s\n", s)
			}
		}
	}
	if q := r.Ratio; q != nil {
		if r.Rate > 0 || r.Workload == Propagation {
			fmt.Fprintf(&b, "herd's p50 latency is %.2f× and its p99 %.2f× the reference's.\n", q.P50, q.P99)
		} else {
			fmt.Fprintf(&b, "herd reaches %.2f of the reference throughput (the ceiling of this machine, client and mode).\n", q.Throughput)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatNanos formats a duration in nanoseconds with 3 significant digits
// and a unit: "87.3µs", "1.25ms", "2.00s".
func FormatNanos(ns int64) string {
	d := float64(ns)
	switch {
	case ns == 0:
		return "0"
	case d < 1e3:
		return fmt.Sprintf("%dns", ns)
	case d < 1e6:
		return sig3(d/1e3) + "µs"
	case d < 1e9:
		return sig3(d/1e6) + "ms"
	default:
		return sig3(d/1e9) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ProgressPrinter prints Progress snapshots: on a terminal as one line
// rewritten in place (carriage return), elsewhere as plain lines.
type ProgressPrinter struct {
	w        io.Writer
	terminal bool
	open     bool // a terminal line is pending its newline
}

// NewProgressPrinter returns a printer writing to w.
func NewProgressPrinter(w io.Writer, terminal bool) *ProgressPrinter {
	return &ProgressPrinter{w: w, terminal: terminal}
}

// Print shows p.
func (p *ProgressPrinter) Print(s Progress) {
	line := fmt.Sprintf("%-9s %5.1fs/%s  %d ok  %d errors  %.0f/s",
		s.Label, s.Elapsed.Seconds(), s.Duration.Round(time.Millisecond), s.OK, s.Errors, s.Rate)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\033[K", line)
		p.open = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// Done ends a pending terminal line.
func (p *ProgressPrinter) Done() {
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
}
