package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// short bounds every test run: a request count, and a duration far above
// what the count needs, so only a broken run meets it.
func short(o Options, ref *Reference) Options {
	o.Targets = []string{ref.Addr()}
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	o.Timeout = 10 * time.Second
	return o
}

func mustRun(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors > 0 {
		t.Errorf("%d errors: %v", res.Errors, res.ErrorSamples)
	}
	return res
}

func TestClosedLoopAgainstReference(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	tests := []struct {
		name string
		o    Options
	}{
		{"iamat keepalive", Options{Workload: IAMAT, Mode: Keepalive, Conns: 4, Requests: 2000}},
		{"iamat oneshot", Options{Workload: IAMAT, Mode: Oneshot, Conns: 4, Requests: 300}},
		{"iamat pipelined", Options{Workload: IAMAT, Mode: Keepalive, Pipeline: 8, Conns: 3, Requests: 2000}},
		{"whatsat keepalive", Options{Workload: WHATSAT, Mode: Keepalive, Conns: 2, Requests: 500, Clients: 10}},
		{"whatsat oneshot", Options{Workload: WHATSAT, Mode: Oneshot, Conns: 2, Requests: 100, Clients: 4}},
		{"whatsat pipelined", Options{Workload: WHATSAT, Mode: Keepalive, Pipeline: 4, Conns: 2, Requests: 500}},
		{"mix", Options{Workload: Mix, MixIAMAT: 0.5, Mode: Keepalive, Pipeline: 2, Conns: 2, Requests: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustRun(t, short(tc.o, ref))
			if res.Requests != tc.o.Requests || res.OK != tc.o.Requests {
				t.Errorf("requests %d, ok %d, want %d", res.Requests, res.OK, tc.o.Requests)
			}
			if got := res.Histogram().TotalCount(); got != tc.o.Requests {
				t.Errorf("histogram holds %d latencies, want %d", got, tc.o.Requests)
			}
			if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.Max {
				t.Errorf("latency %+v", res.Latency)
			}
			whatsats := res.PlacesStatus["OK"]
			switch tc.o.Workload {
			case IAMAT:
				if whatsats != 0 {
					t.Errorf("%d WHATSAT replies in an IAMAT run", whatsats)
				}
			case WHATSAT:
				if whatsats != tc.o.Requests {
					t.Errorf("%d WHATSAT replies, want %d", whatsats, tc.o.Requests)
				}
			case Mix:
				if whatsats == 0 || whatsats == tc.o.Requests {
					t.Errorf("%d WHATSAT replies of %d in a 50%% mix", whatsats, tc.o.Requests)
				}
			}
		})
	}
}

func TestOpenLoopAgainstReference(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	for _, o := range []Options{
		{Mode: Keepalive, Conns: 4, Rate: 4000, Requests: 400},
		{Mode: Keepalive, Pipeline: 4, Conns: 2, Rate: 4000, Requests: 400},
		{Mode: Oneshot, Conns: 4, Rate: 2000, Requests: 100},
	} {
		t.Run(string(o.Mode), func(t *testing.T) {
			res := mustRun(t, short(o, ref))
			if res.OK != o.Requests {
				t.Errorf("ok %d, want %d", res.OK, o.Requests)
			}
			if res.SendLag == nil || res.SendLag.Count != o.Requests {
				t.Errorf("send lag %+v, want %d values", res.SendLag, o.Requests)
			}
		})
	}
}

func TestOpenLoopEndsOnTime(t *testing.T) {
	// Bounded by the duration alone: the schedule holds rate × duration
	// requests, and each is either answered, failed or counted unsent.
	ref := startReference(t, ReferenceOptions{})
	o := Options{Targets: []string{ref.Addr()}, Conns: 3, Rate: 1000, Duration: 200 * time.Millisecond}
	res := mustRun(t, o)
	if total := res.Requests + res.Unsent; total != 200 {
		t.Errorf("requests %d + unsent %d = %d, want the 200 of the schedule", res.Requests, res.Unsent, total)
	}
}

func TestDurationBoundsClosedLoop(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	res := mustRun(t, Options{Targets: []string{ref.Addr()}, Conns: 2, Duration: 100 * time.Millisecond})
	if res.OK == 0 {
		t.Error("no request in 100ms")
	}
}

func TestRoundRobinTargets(t *testing.T) {
	a, b := startReference(t, ReferenceOptions{Name: "A"}), startReference(t, ReferenceOptions{Name: "B"})
	for _, mode := range Modes {
		res := mustRun(t, Options{Targets: []string{a.Addr(), b.Addr()}, Mode: mode, Conns: 2, Requests: 50, Duration: 20 * time.Second})
		if res.OK != 50 {
			t.Errorf("%s: ok %d, want 50", mode, res.OK)
		}
	}
}

// fakeServer answers every line with reply(line).
func fakeServer(t *testing.T, reply func(line string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(nc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := nc.Write([]byte(reply(strings.TrimSuffix(line, "\n")))); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestWrongRepliesAreCounted(t *testing.T) {
	addr := fakeServer(t, func(line string) string {
		f := strings.Fields(line)
		return "AT X +0.000000001 " + f[1] + " +0+0 " + f[3] + "\n" // wrong location
	})
	for _, o := range []Options{
		{Mode: Keepalive, Conns: 2, Requests: 40},
		{Mode: Keepalive, Pipeline: 4, Conns: 1, Requests: 40},
		{Mode: Oneshot, Conns: 2, Requests: 10},
	} {
		o.Targets, o.Duration, o.Timeout = []string{addr}, 20*time.Second, 10*time.Second
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 0 || res.ErrorKinds[KindWrongReply] == 0 {
			t.Errorf("%s pipeline %d: ok %d, kinds %v", o.Mode, o.Pipeline, res.OK, res.ErrorKinds)
		}
		if res.Errors != res.Requests || res.Requests != o.Requests {
			t.Errorf("%s pipeline %d: %d errors of %d requests, want all %d", o.Mode, o.Pipeline, res.Errors, res.Requests, o.Requests)
		}
		if !strings.Contains(strings.Join(res.ErrorSamples, "\n"), "location \"+0+0\", want") {
			t.Errorf("samples %q, want the wrong location shown", res.ErrorSamples)
		}
	}
}

func TestDeadServerIsCountedNotHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res, err := Run(context.Background(), Options{Targets: []string{addr}, Conns: 1, Requests: 3, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.ErrorKinds[KindIO] != 3 {
		t.Errorf("ok %d, kinds %v, want 3 io errors", res.OK, res.ErrorKinds)
	}
}

func TestBenchProbeFailsFast(t *testing.T) {
	addr := fakeServer(t, func(string) string { return "HELLO\n" })
	_, err := Bench(context.Background(), Options{Targets: []string{addr}, Requests: 1, Timeout: 10 * time.Second}, true)
	if err == nil || !strings.Contains(err.Error(), "does not answer IAMAT like a herd") {
		t.Errorf("got %v", err)
	}
}

func TestBenchWithReference(t *testing.T) {
	herdLike := startReference(t, ReferenceOptions{Name: "Goloman"})
	var seen []Progress
	o := Options{Targets: []string{herdLike.Addr()}, Workload: Mix, MixIAMAT: 0.5, Conns: 2, Requests: 300, Duration: 20 * time.Second,
		ProgressInterval: time.Millisecond, Progress: func(p Progress) { seen = append(seen, p) }}
	rep, err := Bench(context.Background(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reference == nil || rep.Ratio == nil || rep.Herd == nil {
		t.Fatalf("report %+v lacks a part", rep)
	}
	if rep.Reference.OK != 300 || rep.Herd.OK != 300 {
		t.Errorf("ok: reference %d, herd %d, want 300 each", rep.Reference.OK, rep.Herd.OK)
	}
	if rep.Reference.Label != "reference" || rep.Herd.Label != "herd" {
		t.Errorf("labels %q %q", rep.Reference.Label, rep.Herd.Label)
	}
	if rep.Ratio.Throughput <= 0 || rep.Ratio.P50 <= 0 {
		t.Errorf("ratio %+v", rep.Ratio)
	}
	for _, p := range seen {
		if p.Label != "herd" && p.Label != "reference" {
			t.Errorf("progress label %q", p.Label)
		}
	}
}

func TestPropagationAgainstReference(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	o := Options{Workload: Propagation, From: ref.Addr(), To: ref.Addr(), Requests: 20, Duration: 20 * time.Second, reference: true}
	res := mustRun(t, o)
	if res.OK != 20 || res.PollsPerSample != 1 {
		t.Errorf("ok %d, polls per sample %v; want 20 and 1", res.OK, res.PollsPerSample)
	}
}

func TestCancelStopsRun(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	o := Options{Targets: []string{ref.Addr()}, Conns: 2, Pipeline: 2, Duration: time.Minute,
		ProgressInterval: time.Millisecond, Progress: func(p Progress) {
			if p.OK > 0 {
				cancel()
			}
		}}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 {
		t.Errorf("cancelling counted %d errors: %v", res.Errors, res.ErrorSamples)
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Error("run ended before it was cancelled")
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Targets: []string{"x:1"}}
	bad := map[string]Options{
		"workload":          {Workload: "nope", Targets: ok.Targets},
		"mode":              {Mode: "nope", Targets: ok.Targets},
		"oneshot pipeline":  {Mode: Oneshot, Pipeline: 2, Targets: ok.Targets},
		"negative rate":     {Rate: -1, Targets: ok.Targets},
		"mix share":         {MixIAMAT: 1.5, Targets: ok.Targets},
		"bound":             {Bound: 21, Targets: ok.Targets},
		"radius":            {Radius: "51", Targets: ok.Targets},
		"no target":         {},
		"propagation to":    {Workload: Propagation, From: "x:1"},
		"propagation rate":  {Workload: Propagation, From: "x:1", To: "y:1", Rate: 5},
		"negative requests": {Requests: -1, Targets: ok.Targets},
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for name, o := range bad {
		if o.Validate() == nil {
			t.Errorf("%s: got nil, want an error", name)
		}
	}
}
