package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"herd/internal/bench"
	"herd/internal/config"
	"herd/internal/places"
)

const benchAbout = `Load a herd with IAMAT and WHATSAT lines, check every reply, and report
throughput and latency percentiles (p50/p90/p99/p99.9/max, HDR histogram).
Works against any server speaking the course protocol.

Targets: -addr HOST:PORT (repeatable or comma-separated; round-robin), or
-server NAME from -config (default: the config's first server; "all": every
server), or -spawn to start the config's herd in this process first.

Workloads: iamat, whatsat (clients are reported first, not measured), mix
(-mix is the IAMAT share), propagation (IAMAT at -from, then WHATSAT at -to
until it answers with that exact AT line; default: the two servers farthest
apart in the config), redis (the same update as "GEOADD herd <lng> <lat> <id>"
to a Redis server at -addr, reply :0 or :1: a side-by-side with Redis).

Load: closed loop with -c connections, or open loop at -rate requests per
second shared by -c connections (latency counts from when a request was due).
Modes: keepalive (-pipeline N requests in flight per connection) or oneshot
(a connection per request, half-closed after the line, read to EOF).
-d bounds the run in time (default 5s, or 1m with -n), -n in requests;
-warmup D runs the same load for D first, unmeasured.

-reference first runs the same load, with the same client, against a trivial
in-process line server answering same-sized replies, and prints the herd's
figures as a ratio of that ceiling.

Examples:
  herd bench -spawn -reference -c 16
  herd bench -spawn -reference -mode oneshot -c 16
  herd bench -spawn -reference -c 16 -pipeline 16
  herd bench -spawn -reference -workload propagation -n 2000
  herd bench -addr 127.0.0.1:12000,127.0.0.1:12001 -rate 20000 -d 10s -json`

// listFlag is a repeatable, comma-separated string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// benchFlags is what the command line of herd bench asks for.
type benchFlags struct {
	o                               bench.Options
	addrs, servers                  listFlag
	cfgPath, placesKind, from, to   string
	spawnLogs, spawnData            string
	cpuProfile                      string
	spawn, reference, asJSON, quiet bool
}

// runBench runs herd bench: its steps are reading the flags, finding the
// targets (starting a herd with -spawn), running the load and writing the
// report.
func runBench(ctx context.Context, e *env, args []string) error {
	f, err := parseBenchFlags(e, args)
	if err != nil {
		return err
	}
	t, err := newBenchTargets(f)
	if err != nil {
		return err
	}
	if f.spawn {
		cleanup, err := t.spawn(ctx, e, f)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	o := f.o
	if err := t.resolve(&o, f); err != nil {
		return err
	}
	if t.spawned != nil && o.Conns > t.spawned.MaxConns() {
		return usagef("-c %d is more connections than the spawned servers accept at once (%d each: client.max_conns, lowered to fit the open-file limit that the servers and this load share); raise the limit (ulimit -n), or run the servers apart (herd serve) and load them with -addr", o.Conns, t.spawned.MaxConns())
	}
	rep, err := runLoad(ctx, e, o, f)
	if err != nil {
		return err
	}
	rep.Notes = append(t.notes, rep.Notes...)
	return writeBenchReport(ctx, e, rep, t.label, f.asJSON)
}

// parseBenchFlags reads and checks herd bench's flags, before anything is
// started.
func parseBenchFlags(e *env, args []string) (*benchFlags, error) {
	fs := newFlagSet(e, "bench", "", benchAbout)
	f := &benchFlags{}
	fs.Var(&f.addrs, "addr", "target client address `HOST:PORT` (repeatable, comma-separated)")
	fs.Var(&f.servers, "server", "target server `NAME` from the config (repeatable, comma-separated; \"all\")")
	fs.StringVar(&f.cfgPath, "config", "", "config file (TOML) for -server, -from, -to and -spawn")
	fs.BoolVar(&f.spawn, "spawn", false, "start the config's herd in this process (free 127.0.0.1 ports) and load it")
	fs.StringVar(&f.placesKind, "places", "google-fake", "places for -spawn: google-fake (herd's google provider and cache\nagainst a fake endpoint on 127.0.0.1), fixed (an in-process fake finder\nanswering at once), offline (the offline gazetteer)")
	fs.StringVar(&f.spawnLogs, "spawn-logs", "", "log directory for -spawn (default: a temporary one, removed\nafterwards; \"off\": no log files)")
	fs.StringVar(&f.spawnData, "spawn-data", "", "durable state directory for -spawn (default: a temporary one,\nremoved afterwards, when the config has data_dir; \"off\": memory only)")
	workload := fs.String("workload", string(bench.IAMAT), "`NAME`: iamat, whatsat, mix, propagation or redis")
	mix := fs.Float64("mix", 0.9, "IAMAT share of the mix workload, 0 to 1")
	mode := fs.String("mode", string(bench.Keepalive), "connections: keepalive or oneshot")
	pipeline := fs.Int("pipeline", 1, "requests in flight per keepalive connection")
	conns := fs.Int("c", 16, "connections; for propagation, concurrent probers (1 unless given)")
	rate := fs.Float64("rate", 0, "open loop: total requests per second (0: closed loop)")
	dur := fs.Duration("d", 0, "run duration (default 5s, or 1m with -n)")
	warmup := fs.Duration("warmup", 0, "unmeasured run of the same load before each measured one")
	count := fs.Int64("n", 0, "number of requests (propagation: samples); 0: no limit")
	clients := fs.Int("clients", 1000, "distinct client ids (at least -c)")
	radius := fs.String("radius", "10", "WHATSAT radius in km")
	bound := fs.Int("bound", 5, "WHATSAT bound (1-20)")
	fs.StringVar(&f.from, "from", "", "propagation: server NAME or HOST:PORT that gets the IAMAT")
	fs.StringVar(&f.to, "to", "", "propagation: server NAME or HOST:PORT that is asked")
	timeout := fs.Duration("timeout", 5*time.Second, "limit on each connect and reply, and on each propagation sample")
	fs.BoolVar(&f.reference, "reference", false, "also measure the reference ceiling and print ratios")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&f.quiet, "q", false, "no progress line on standard error")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (client and -spawn herd) to `FILE`; best without -reference")
	if err := parseFlagsOnly(e, fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	f.o = bench.Options{
		Workload: bench.Workload(*workload), MixIAMAT: *mix, Mode: bench.Mode(*mode), Pipeline: *pipeline,
		Conns: *conns, Rate: *rate, Duration: *dur, Warmup: *warmup, Requests: *count, Clients: *clients,
		Radius: *radius, Bound: *bound, Timeout: *timeout,
	}
	if f.o.Workload == bench.Propagation && !set["c"] {
		f.o.Conns = 1
	}
	if *conns < 1 || *pipeline < 1 || *clients < 0 || *dur < 0 || *warmup < 0 || *timeout <= 0 {
		return nil, usagef("-c, -pipeline and -timeout must be positive, -clients, -d and -warmup not negative")
	}
	if len(f.addrs) > 0 && (len(f.servers) > 0 || f.spawn) {
		return nil, usagef("give -addr, or -server/-spawn with a config, not both")
	}
	if set["places"] && !f.spawn {
		return nil, usagef("-places chooses the places of a herd started with -spawn")
	}
	// Check the options before anything is started; targets come later.
	probe := f.o
	probe.Targets, probe.From, probe.To = []string{"x:1"}, "x:1", "x:1"
	if err := probe.Validate(); err != nil {
		return nil, usageError{err}
	}
	return f, nil
}

// benchTargets turns server names and addresses into the addresses to load.
type benchTargets struct {
	cfg     *config.Config // nil with -addr
	spawned *bench.Spawned // the herd -spawn started, or nil
	notes   []string       // for the report
	label   map[string]string
}

// newBenchTargets reads the config (unless -addr gives every target) and
// checks every server name before anything is started.
func newBenchTargets(f *benchFlags) (*benchTargets, error) {
	t := &benchTargets{label: map[string]string{}}
	if len(f.addrs) > 0 {
		return t, nil
	}
	var err error
	if t.cfg, err = loadConfig(f.cfgPath); err != nil {
		return nil, err
	}
	for _, n := range append([]string{f.from, f.to}, f.servers...) {
		if n != "" && n != "all" {
			if _, err := t.configAddr(n); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// configAddr is the client address of name in the config (name itself
// when it is HOST:PORT).
func (t *benchTargets) configAddr(name string) (string, error) {
	if strings.Contains(name, ":") {
		return name, nil
	}
	if t.cfg == nil {
		return "", usagef("%q is not HOST:PORT (server names need a config, not -addr)", name)
	}
	s, ok := t.cfg.Server(name)
	if !ok {
		return "", usagef("no server named %q in %s (servers are %s)", name, t.cfg.Source(), strings.Join(t.cfg.Names(), ", "))
	}
	return s.Addr, nil
}

// addr is where to reach name: in the spawned herd, or as configured.
func (t *benchTargets) addr(name string) (string, error) {
	a, err := t.configAddr(name)
	if err != nil || t.spawned == nil || strings.Contains(name, ":") {
		return a, err
	}
	a, _ = t.spawned.Addr(name)
	return a, nil
}

// spawn starts the config's herd in this process; cleanup stops it.
func (t *benchTargets) spawn(ctx context.Context, e *env, f *benchFlags) (func(), error) {
	sp, cleanup, note, err := spawnHerd(ctx, e, t.cfg, f.placesKind, f.spawnLogs, f.spawnData, string(f.o.Workload))
	if err != nil {
		return nil, err
	}
	t.spawned = sp
	t.notes = append(t.notes, note)
	return cleanup, nil
}

// resolve fills in o's targets (or, for propagation, From and To), and
// the names they are reported by.
func (t *benchTargets) resolve(o *bench.Options, f *benchFlags) error {
	if o.Workload == bench.Propagation {
		from, to := f.from, f.to
		if from == "" || to == "" {
			switch {
			case len(f.addrs) >= 2:
				from, to = cmpOr(from, f.addrs[0]), cmpOr(to, f.addrs[len(f.addrs)-1])
			case t.cfg != nil:
				ff, ft, hops := bench.FarthestPair(t.cfg)
				from, to = cmpOr(from, ff), cmpOr(to, ft)
				if f.from == "" && f.to == "" {
					t.notes = append(t.notes, fmt.Sprintf("from and to: the farthest servers of the herd (%d hops)", hops))
				}
			default:
				return usagef("propagation needs -from and -to (or two -addr)")
			}
		}
		var err error
		if o.From, err = t.addr(from); err != nil {
			return err
		}
		if o.To, err = t.addr(to); err != nil {
			return err
		}
		t.label[o.From], t.label[o.To] = from, to
		return nil
	}
	names := []string(f.servers)
	switch {
	case len(f.addrs) > 0:
		names = f.addrs
	case len(names) == 0:
		names = t.cfg.Names()[:1]
	case slices.Contains(names, "all"):
		names = t.cfg.Names()
	}
	for _, n := range names {
		a, err := t.addr(n)
		if err != nil {
			return err
		}
		o.Targets = append(o.Targets, a)
		t.label[a] = n
	}
	return nil
}

// runLoad runs the load, with a progress line and a CPU profile when asked.
func runLoad(ctx context.Context, e *env, o bench.Options, f *benchFlags) (*bench.Report, error) {
	var pp *bench.ProgressPrinter
	if !f.quiet {
		pp = bench.NewProgressPrinter(e.stderr, isTerminal(e.stderr))
		o.Progress = pp.Print
	}
	if f.cpuProfile != "" {
		file, err := os.Create(f.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		if err := pprof.StartCPUProfile(file); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Bench(ctx, o, f.reference)
	if pp != nil {
		pp.Done()
	}
	return rep, err
}

// writeBenchReport prints the report with targets named as given, and
// fails when any request to the herd failed.
func writeBenchReport(ctx context.Context, e *env, rep *bench.Report, label map[string]string, asJSON bool) error {
	named := func(a string) string {
		if n := label[a]; n != "" && n != a {
			return a + " (" + n + ")"
		}
		return a
	}
	for i, a := range rep.Targets {
		rep.Targets[i] = named(a)
	}
	rep.From, rep.To = named(rep.From), named(rep.To)
	var err error
	if asJSON {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	if err != nil {
		return err
	}
	if n := rep.Herd.Errors; n > 0 {
		return fmt.Errorf("%d of %d requests to the herd failed", n, rep.Herd.Requests)
	}
	return ctx.Err()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// spawnHerd starts cfg's herd in-process for bench and waits for its links.
// cleanup stops it and removes what it made.
func spawnHerd(ctx context.Context, e *env, cfg *config.Config, placesKind, logs, data, workload string) (sp *bench.Spawned, cleanup func(), note string, err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	discard := slog.New(slog.DiscardHandler)
	so := bench.SpawnOptions{Config: cfg}
	var placesNote string
	switch placesKind {
	case "fixed":
		placesNote = "an in-process finder answering 20 fixed results at once"
	case "google-fake":
		fp, err := bench.StartFakePlaces()
		if err != nil {
			return nil, nil, "", err
		}
		undo = append(undo, func() { fp.Close() })
		pc := cfg.Places
		pc.Provider, pc.Endpoint = "google", fp.URL
		getenv := func(k string) string {
			if k == "GOOGLE_PLACES_API_KEY" {
				return "herd-bench-fake-key"
			}
			return e.getenv(k)
		}
		so.NewFinder = finderFactory(pc, getenv, discard)
		placesNote = "herd's google provider and cache, against a fake endpoint at " + fp.URL
	case "offline":
		pc := cfg.Places
		pc.Provider = "offline"
		so.NewFinder = finderFactory(pc, e.getenv, discard)
		placesNote = "the offline gazetteer"
	default:
		return nil, nil, "", usagef("-places %q: want google-fake, fixed or offline", placesKind)
	}
	if placesKind == "fixed" {
		f := bench.NewFixedFinder()
		so.NewFinder = func(string) places.Finder { return f }
	}
	logNote := ""
	switch logs {
	case "off":
		logNote = "no log files"
	case "":
		dir, err := os.MkdirTemp("", "herd-bench-logs-")
		if err != nil {
			return nil, nil, "", err
		}
		undo = append(undo, func() { os.RemoveAll(dir) })
		so.LogDir, logNote = dir, "logging to a temporary directory"
	default:
		so.LogDir, logNote = logs, "logging to "+logs
	}
	dataNote := "state in memory"
	switch {
	case data == "off" || (data == "" && cfg.DataDir == ""):
	case data == "":
		dir, err := os.MkdirTemp("", "herd-bench-data-")
		if err != nil {
			return nil, nil, "", err
		}
		undo = append(undo, func() { os.RemoveAll(dir) })
		so.DataDir, dataNote = dir, "durable state in a temporary directory"
	default:
		so.DataDir, dataNote = data, "durable state in "+data
	}
	sp, err = bench.Spawn(so)
	if err != nil {
		return nil, nil, "", err
	}
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sp.Close(sctx)
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sp.WaitLinks(wctx); err != nil {
		return nil, nil, "", err
	}
	note = fmt.Sprintf("spawned in this process: %d servers from %s, %s, %s", len(cfg.Servers), cfg.Source(), logNote, dataNote)
	if workload != string(bench.IAMAT) {
		note += "; places: " + placesNote
	}
	return sp, cleanup, note, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
