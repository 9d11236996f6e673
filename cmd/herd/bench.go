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
apart in the config).

Load: closed loop with -c connections, or open loop at -rate requests per
second shared by -c connections (latency counts from when a request was due).
Modes: keepalive (-pipeline N requests in flight per connection) or oneshot
(a connection per request, half-closed after the line, read to EOF).
-d bounds the run in time (default 5s, or 1m with -n), -n in requests.

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

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "bench", "", benchAbout)
	var addrs, servers listFlag
	fs.Var(&addrs, "addr", "target client address `HOST:PORT` (repeatable, comma-separated)")
	fs.Var(&servers, "server", "target server `NAME` from the config (repeatable, comma-separated; \"all\")")
	cfgPath := fs.String("config", "", "config file (TOML) for -server, -from, -to and -spawn")
	spawn := fs.Bool("spawn", false, "start the config's herd in this process (free 127.0.0.1 ports) and load it")
	placesKind := fs.String("places", "google-fake", "places for -spawn: google-fake (herd's google provider and cache\nagainst a fake endpoint on 127.0.0.1), fixed (an in-process fake finder\nanswering at once), offline (the offline gazetteer)")
	spawnLogs := fs.String("spawn-logs", "", "log directory for -spawn (default: a temporary one, removed\nafterwards; \"off\": no log files)")
	spawnData := fs.String("spawn-data", "", "durable state directory for -spawn (default: a temporary one,\nremoved afterwards, when the config has data_dir; \"off\": memory only)")
	workload := fs.String("workload", string(bench.IAMAT), "`NAME`: iamat, whatsat, mix or propagation")
	mix := fs.Float64("mix", 0.9, "IAMAT share of the mix workload, 0 to 1")
	mode := fs.String("mode", string(bench.Keepalive), "connections: keepalive or oneshot")
	pipeline := fs.Int("pipeline", 1, "requests in flight per keepalive connection")
	conns := fs.Int("c", 16, "connections; for propagation, concurrent probers (1 unless given)")
	rate := fs.Float64("rate", 0, "open loop: total requests per second (0: closed loop)")
	dur := fs.Duration("d", 0, "run duration (default 5s, or 1m with -n)")
	count := fs.Int64("n", 0, "number of requests (propagation: samples); 0: no limit")
	clients := fs.Int("clients", 1000, "distinct client ids (at least -c)")
	radius := fs.String("radius", "10", "WHATSAT radius in km")
	bound := fs.Int("bound", 5, "WHATSAT bound (1-20)")
	from := fs.String("from", "", "propagation: server NAME or HOST:PORT that gets the IAMAT")
	to := fs.String("to", "", "propagation: server NAME or HOST:PORT that is asked")
	timeout := fs.Duration("timeout", 5*time.Second, "limit on each connect and reply, and on each propagation sample")
	reference := fs.Bool("reference", false, "also measure the reference ceiling and print ratios")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("q", false, "no progress line on standard error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (client and -spawn herd) to `FILE`; best without -reference")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := bench.Options{
		Workload: bench.Workload(*workload), MixIAMAT: *mix, Mode: bench.Mode(*mode), Pipeline: *pipeline,
		Conns: *conns, Rate: *rate, Duration: *dur, Requests: *count, Clients: *clients,
		Radius: *radius, Bound: *bound, Timeout: *timeout,
	}
	if o.Workload == bench.Propagation && !set["c"] {
		o.Conns = 1
	}
	if *conns < 1 || *pipeline < 1 || *clients < 0 || *dur < 0 || *timeout <= 0 {
		return usagef("-c, -pipeline and -timeout must be positive, -clients and -d not negative")
	}
	if len(addrs) > 0 && (len(servers) > 0 || *spawn) {
		return usagef("give -addr, or -server/-spawn with a config, not both")
	}
	if set["places"] && !*spawn {
		return usagef("-places chooses the places of a herd started with -spawn")
	}
	// Check the options before anything is started; targets come later.
	probe := o
	probe.Targets, probe.From, probe.To = []string{"x:1"}, "x:1", "x:1"
	if err := probe.Validate(); err != nil {
		return usageError{err}
	}

	var notes []string
	var cfg *config.Config
	if len(addrs) == 0 {
		var err error
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	addrOf := func(name string) (string, error) {
		if strings.Contains(name, ":") {
			return name, nil
		}
		if cfg == nil {
			return "", usagef("%q is not HOST:PORT (server names need a config, not -addr)", name)
		}
		s, ok := cfg.Server(name)
		if !ok {
			return "", usagef("no server named %q in %s (servers are %s)", name, describe(cfg), strings.Join(cfg.Names(), ", "))
		}
		return s.Addr, nil
	}
	if cfg != nil { // catch a wrong name before spawning a herd
		for _, n := range append([]string{*from, *to}, servers...) {
			if n != "" && n != "all" {
				if _, err := addrOf(n); err != nil {
					return err
				}
			}
		}
	}
	if *spawn {
		sp, cleanup, note, err := spawnHerd(ctx, e, cfg, *placesKind, *spawnLogs, *spawnData, string(o.Workload))
		if err != nil {
			return err
		}
		defer cleanup()
		notes = append(notes, note)
		inner := addrOf
		addrOf = func(name string) (string, error) {
			if strings.Contains(name, ":") {
				return name, nil
			}
			if _, err := inner(name); err != nil {
				return "", err
			}
			a, _ := sp.Addr(name)
			return a, nil
		}
	}

	label := map[string]string{}
	if o.Workload == bench.Propagation {
		f, t := *from, *to
		if f == "" || t == "" {
			switch {
			case len(addrs) >= 2:
				f, t = cmpOr(f, addrs[0]), cmpOr(t, addrs[len(addrs)-1])
			case cfg != nil:
				ff, ft, hops := bench.FarthestPair(cfg)
				f, t = cmpOr(f, ff), cmpOr(t, ft)
				if *from == "" && *to == "" {
					notes = append(notes, fmt.Sprintf("from and to: the farthest servers of the herd (%d hops)", hops))
				}
			default:
				return usagef("propagation needs -from and -to (or two -addr)")
			}
		}
		var err error
		if o.From, err = addrOf(f); err != nil {
			return err
		}
		if o.To, err = addrOf(t); err != nil {
			return err
		}
		label[o.From], label[o.To] = f, t
	} else {
		names := []string(servers)
		if len(addrs) > 0 {
			names = addrs
		} else if len(names) == 0 {
			names = cfg.Names()[:1]
		} else if slices.Contains(names, "all") {
			names = cfg.Names()
		}
		for _, n := range names {
			a, err := addrOf(n)
			if err != nil {
				return err
			}
			o.Targets = append(o.Targets, a)
			label[a] = n
		}
	}

	var pp *bench.ProgressPrinter
	if !*quiet {
		pp = bench.NewProgressPrinter(e.stderr, isTerminal(e.stderr))
		o.Progress = pp.Print
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	rep, err := bench.Bench(ctx, o, *reference)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if pp != nil {
		pp.Done()
	}
	if err != nil {
		return err
	}
	rep.Notes = append(notes, rep.Notes...)
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
	if *asJSON {
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
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
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
	note = fmt.Sprintf("spawned in this process: %d servers from %s, %s, %s", len(cfg.Servers), describe(cfg), logNote, dataNote)
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
