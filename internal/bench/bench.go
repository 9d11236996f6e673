// Package bench is herd's load generator: it sends IAMAT and WHATSAT lines
// to any server speaking the herd client protocol (SPEC §2), checks every
// reply, and reports throughput and latency percentiles from an HDR
// histogram.
//
// A run is closed-loop (Options.Conns workers, each sending its next request
// when the previous reply is in) or open-loop (Options.Rate requests per
// second on a fixed schedule, latency measured from the time a request was
// due, so a stalled server cannot hide its stall: no coordinated omission).
// Connections are one per request (Oneshot, as course graders talk),
// kept alive (Keepalive), or kept alive with Options.Pipeline requests in
// flight. The Propagation workload times how long an update reported at one
// server takes to be answered by another.
//
// Bench runs the same client against Reference, a trivial in-process line
// server answering same-sized replies, and reports the herd's figures as a
// ratio of that ceiling. Spawn starts a herd in-process for a self-contained
// measurement, with FixedFinder or FakePlaces answering for the places
// service; those are the only parts of the package that know herd's
// internals. Every loop here is bounded by a duration, a request count or
// both, and every network wait by Options.Timeout.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Options describe one run. The zero value of most fields has a default;
// see withDefaults.
type Options struct {
	// Workload is what to send; default IAMAT.
	Workload Workload
	// MixIAMAT is the share of IAMAT in the Mix workload, 0 to 1.
	MixIAMAT float64
	// Mode is how connections are used; default Keepalive.
	Mode Mode
	// Pipeline is the number of requests in flight per Keepalive
	// connection; 1 (the default) waits for each reply.
	Pipeline int
	// Conns is the number of connections (closed loop: of requests in
	// flight without pipelining; Oneshot: of workers opening connections).
	// Default 1.
	Conns int
	// Rate is the total requests per second of an open-loop run, shared
	// evenly by the Conns workers; 0 means closed loop.
	Rate float64
	// Duration bounds the run; default 5 s, or 1 min when Requests is set.
	Duration time.Duration
	// Warmup, when positive, is a run of the same load for this long
	// before each measured one (Bench only), on connections of its own,
	// whose figures are dropped: it fills the servers' tables, caches and
	// buffers first.
	Warmup time.Duration
	// Requests bounds the number of requests (Propagation: of samples);
	// 0 means only Duration does.
	Requests int64
	// Targets are the servers' client addresses (host:port); worker i talks
	// to Targets[i % len] (Oneshot: round-robin over all of them).
	Targets []string
	// From and To are the addresses of the Propagation workload.
	From, To string
	// Clients is the number of distinct client ids reported and asked
	// about; at least Conns (the default), as every worker owns its own.
	Clients int
	// Radius (km, as written on the line) and Bound are the WHATSAT
	// arguments; defaults "10" and 5.
	Radius string
	Bound  int
	// Timeout bounds every connect and every reply, and a propagation
	// sample; default 5 s.
	Timeout time.Duration
	// Progress, when set, is called about every ProgressInterval (default
	// 1 s) during the measured part of the run, from one goroutine.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// RunID prefixes the client ids; default "bench-" and random hex, so
	// runs against a long-lived herd never collide.
	RunID string

	label     string // "herd" or "reference": for Progress and Result
	reference bool   // Propagation against Reference: any AT answer counts
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Label    string        // "herd" or "reference"
	Elapsed  time.Duration // since the measured part started
	Duration time.Duration // planned length
	OK       int64         // good replies so far
	Errors   int64         // errors so far
	Rate     float64       // good replies per second over the last interval
}

// Result is the outcome of one run.
type Result struct {
	// Label says what was measured: "herd" or "reference".
	Label string `json:"label"`
	// Addrs are the addresses that were loaded.
	Addrs []string `json:"addrs"`
	// Requests counts requests that got an answer or failed; OK the good
	// ones and Errors the others (Propagation: samples).
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
	// ErrorKinds counts errors by kind (KindWrongReply, KindIO, ...), and
	// ErrorSamples quotes a few of each, prefixed with the kind.
	ErrorKinds   map[string]int64 `json:"error_kinds"`
	ErrorSamples []string         `json:"error_samples"`
	// Unsent counts open-loop requests that were due before the end but
	// could not be sent in time: the load was not sustained.
	Unsent int64 `json:"unsent"`
	// Elapsed is the length of the measured part; Seconds is the same in
	// seconds, for JSON.
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"elapsed_s"`
	// Throughput is good replies (Propagation: samples) per second.
	Throughput float64 `json:"throughput"`
	// Latency is the time from sending a request (open loop: from when it
	// was due) to its whole reply; for Propagation, from sending the IAMAT
	// to the first reply of the other server that carries it.
	Latency Percentiles `json:"latency_ns"`
	// SendLag (open loop) is how late requests were sent after they were
	// due: load-generator lag or back-pressure from full pipelines.
	SendLag *Percentiles `json:"send_lag_ns,omitempty"`
	// PollsPerSample (Propagation) is the mean number of WHATSATs sent to
	// the second server per sample.
	PollsPerSample float64 `json:"polls_per_sample,omitempty"`
	// PlacesStatus counts the "status" of every good WHATSAT reply.
	PlacesStatus map[string]int64 `json:"places_status,omitempty"`

	hist *hdrhistogram.Histogram
}

// Histogram returns the latency histogram of the run (nanoseconds).
func (r *Result) Histogram() *hdrhistogram.Histogram { return r.hist }

// withDefaults returns o with every unset field at its default.
func (o Options) withDefaults() Options {
	if o.Workload == "" {
		o.Workload = IAMAT
	}
	if o.Mode == "" {
		o.Mode = Keepalive
	}
	o.Pipeline = max(o.Pipeline, 1)
	o.Conns = max(o.Conns, 1)
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
		if o.Requests > 0 {
			o.Duration = time.Minute
		}
	}
	o.Clients = max(o.Clients, o.Conns)
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Radius == "" {
		o.Radius = "10"
	}
	if o.Bound == 0 {
		o.Bound = 5
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.RunID == "" {
		o.RunID = newRunID()
	}
	if o.label == "" {
		o.label = "herd"
	}
	return o
}

// newRunID returns "bench-" and 6 random hex digits.
func newRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case !slices.Contains(Workloads, o.Workload):
		return fmt.Errorf("unknown workload %q: want one of %v", o.Workload, Workloads)
	case !slices.Contains(Modes, o.Mode):
		return fmt.Errorf("unknown mode %q: want one of %v", o.Mode, Modes)
	case o.Pipeline > 1 && o.Mode != Keepalive:
		return errors.New("pipelining needs keepalive connections")
	case o.Pipeline > 1 && o.Workload == Propagation:
		return errors.New("the propagation workload does not pipeline")
	case o.Rate < 0:
		return errors.New("the rate must not be negative")
	case o.Rate > 0 && o.Workload == Propagation:
		return errors.New("the propagation workload runs closed-loop only")
	case o.Requests < 0:
		return errors.New("the request count must not be negative")
	case o.Warmup < 0:
		return errors.New("the warm-up must not be negative")
	case o.MixIAMAT < 0 || o.MixIAMAT > 1:
		return errors.New("the IAMAT share of the mix must be between 0 and 1")
	case o.Bound < 1 || o.Bound > 20:
		return errors.New("the WHATSAT bound must be 1 to 20")
	case o.Workload == Propagation && (o.From == "" || o.To == ""):
		return errors.New("the propagation workload needs a from and a to server")
	case o.Workload != Propagation && len(o.Targets) == 0:
		return errors.New("no target server")
	}
	if r, err := strconv.ParseFloat(o.Radius, 64); err != nil || !(r > 0 && r <= 50) {
		return fmt.Errorf("bad WHATSAT radius %q: want a number of km, 0 < radius <= 50", o.Radius)
	}
	return nil
}

// Run performs one run and returns its result. For the WHATSAT and Mix
// workloads it first reports every client id at every target (not
// measured), so that each WHATSAT asks about a known client. An error is
// returned only when the run could not start or its preparation failed;
// failed requests are counted in the Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.Workload == Propagation {
		return runPropagation(ctx, &o), nil
	}
	return runLoad(ctx, &o)
}

// Bench measures the herd at o's targets and, when reference is true, the
// same load against a Reference server started for the purpose, and
// returns both with their ratios. Before anything is measured, one IAMAT
// (and for workloads with WHATSAT, one WHATSAT) is sent to the first target
// with a one-shot connection: it fails fast when the target is not a herd,
// and tells the reference which server name and places answer to mimic so
// that its replies have the herd's size. The reference runs first, so that
// work the herd still does after its run (floods) cannot slow it.
func Bench(ctx context.Context, o Options, reference bool) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	rep := newReport(&o)
	if reference {
		shape, err := probe(ctx, &o)
		if err != nil {
			return nil, err
		}
		ref, err := StartReference(ReferenceOptions{Name: shape.name, PlacesJSON: shape.json})
		if err != nil {
			return nil, err
		}
		defer ref.Close()
		ro := o
		ro.label, ro.reference = "reference", true
		ro.RunID = newRunID()
		ro.Targets = []string{ref.Addr()}
		ro.From, ro.To = ref.Addr(), ref.Addr()
		warmUp(ctx, ro)
		if rep.Reference, err = Run(ctx, ro); err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	} else if _, err := probe(ctx, &o); err != nil {
		return nil, err
	}
	warmUp(ctx, o)
	var err error
	if rep.Herd, err = Run(ctx, o); err != nil {
		return nil, err
	}
	if rep.Reference != nil {
		rep.Ratio = ratioOf(rep.Herd, rep.Reference)
	}
	return rep, nil
}

// warmUp runs o's load for o.Warmup, if set, and drops the result: its
// errors show again in the measured run. Propagation samples of the
// warm-up get client ids of their own: a measured sample asks for a client
// no server has heard of, as it does without a warm-up.
func warmUp(ctx context.Context, o Options) {
	if o.Warmup <= 0 {
		return
	}
	o.Duration, o.Requests, o.Progress = o.Warmup, 0, nil
	if o.Workload == Propagation {
		o.RunID += ".warmup"
	}
	Run(ctx, o)
}
