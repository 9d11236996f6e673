//go:build unix

package herd

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/peer"
	"herd/internal/places"
)

// herd50 is the size of the herds of BenchmarkHerd50.
const herd50 = 50

// BenchmarkHerd50 runs a herd of 50 servers in this process, each with 4
// neighbours, in two topologies: a ring with chords (server i linked to
// i±1 and i±7 mod 50) and a random 4-regular graph (seeded, connected).
// Links are authenticated with a shared secret; there are no log files
// and no durable state. Updates are IAMATs for new clients sent to server
// 0 on one connection, in three loads: 100 and 500 per second on a fixed
// schedule, and as fast as the herd takes them with at most 256 updates
// not yet held by every server. For each load it reports:
//
//   - msgs/update, recv-msgs/update: AT lines sent (received) over links
//     per update, from the links' counters, once the links are quiet;
//   - p50-farthest-µs, p99-farthest-µs: from the IAMAT's write until the
//     server farthest from server 0 in hops (the last of them, if several)
//     holds the update, seen by a change hook on its table; p99-all-µs:
//     until every server does;
//   - cpu-µs/update: user and system CPU time of the process (the load
//     client's included) per update; busy-cpu-µs/update: the same less
//     the idle herd's CPU (idle-cpu-ms/s, measured before the loads);
//   - updates/s, hops-farthest and diameter.
//
// Each load runs for -benchtime (updates, with Nx):
//
//	go test ./internal/herd -run '^$' -bench BenchmarkHerd50 -benchtime 5s
func BenchmarkHerd50(b *testing.B) {
	topologies := []struct {
		name string
		adj  func() [][]int
	}{
		{"ring-chords", func() [][]int { return ringWithChords(herd50, 1, 7) }},
		{"random-4-regular", func() [][]int { return randomRegular(b, herd50, 4, 2026) }},
	}
	loads := []struct {
		name   string
		rate   float64 // updates per second; 0: as fast as the window allows
		window int     // updates sent but not yet held by every server, at most
	}{
		{"rate=100", 100, 4096},
		{"rate=500", 500, 4096},
		{"window=256", 0, 256},
	}
	for _, tp := range topologies {
		b.Run(tp.name, func(b *testing.B) {
			adj := tp.adj()
			if !connected(adj) {
				b.Fatalf("%s is not connected", tp.name)
			}
			hops := hopsFrom(adj, 0)
			far := slices.Max(hops)
			sh := startScaleHerd(b, adj)
			dials, busy := sh.refused()
			b.Logf("%s: diameter %d, %d hops from server 0 to the farthest (%d servers at that distance); links up after %v, %d dials refused, %d handshakes refused as busy",
				tp.name, diameter(adj), far, count(hops, far), sh.linkWait.Round(time.Millisecond), dials, busy)
			idle := sh.idleCPU(b, time.Second)
			b.Logf("idle herd: %.1f ms of CPU per second", idle*1e3)
			for _, ld := range loads {
				b.Run(ld.name, func(b *testing.B) {
					r := sh.run(b, b.N, ld.rate, ld.window)
					r.report(b, hops, idle)
					b.ReportMetric(float64(diameter(adj)), "diameter")
					b.ReportMetric(idle*1e3, "idle-cpu-ms/s")
				})
			}
		})
	}
}

// scaleHerd is a running herd of BenchmarkHerd50 with a probe on every
// member's table.
type scaleHerd struct {
	members  []*Member // members[i] is server i of the adjacency
	cur      atomic.Pointer[probe]
	phase    int
	linkWait time.Duration // from Start until every link was up
}

// scaleName is the name of server i of a BenchmarkHerd50 herd.
func scaleName(i int) string { return fmt.Sprintf("s%02d", i) }

// startScaleHerd starts a herd with the links of adj on 127.0.0.1, links
// authenticated with a shared secret, no log files and no durable state,
// and waits until every link is up.
func startScaleHerd(b *testing.B, adj [][]int) *scaleHerd {
	cfg := config.Default()
	cfg.LogDir = ""
	cfg.Servers = make([]config.Server, len(adj))
	for i, ns := range adj {
		s := config.Server{Name: scaleName(i), Addr: "127.0.0.1:0"}
		for _, j := range ns {
			s.Neighbors = append(s.Neighbors, scaleName(j))
		}
		cfg.Servers[i] = s
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	h, err := Start(Options{Config: cfg, Secrets: [][]byte{[]byte("herd50-benchmark-shared-secret")},
		NewFinder: func(string) places.Finder { return &fakeFinder{} }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Close(ctx)
	})
	sh := &scaleHerd{}
	for i := range adj {
		sh.members = append(sh.members, h.Member(scaleName(i)))
	}
	// A server takes at most 8 handshakes at once from one address, and
	// here every dial comes from 127.0.0.1: some may be refused as busy
	// and retried.
	waitFor(b, time.Minute, "every link of the 50 servers up", func() bool {
		for _, m := range sh.members {
			for _, l := range m.Peers.Links() {
				if !l.Up {
					return false
				}
			}
		}
		return true
	})
	sh.linkWait = time.Since(start)
	// OnChange takes the table's change lock, so a hook may join a
	// running table; it sees the changes that follow.
	for i, m := range sh.members {
		m.Table.OnChange(func(r location.Record, _ string) { sh.held(i, r) })
	}
	return sh
}

// refused is the number of dials whose handshake failed so far, and of
// handshakes refused as busy.
func (sh *scaleHerd) refused() (dials, busy int64) {
	for _, m := range sh.members {
		for _, l := range m.Peers.Links() {
			dials += l.Refused
		}
		busy += m.Peers.Refusals()[peer.RefuseBusy.String()]
	}
	return dials, busy
}

// linkTotals sums the AT lines sent and received over every link, and the
// connections replaced or dropped, so far.
func (sh *scaleHerd) linkTotals() (sent, received, drops int64) {
	for _, m := range sh.members {
		for _, l := range m.Peers.Links() {
			sent += l.Sent
			received += l.Received
			drops += l.Reconnects + l.Dropped
		}
	}
	return sent, received, drops
}

// idleCPU returns the CPU seconds per second the herd spends with no
// updates (heartbeats, timers, the runtime), measured over d.
func (sh *scaleHerd) idleCPU(b *testing.B, d time.Duration) float64 {
	c0, t0 := cpuTime(b), time.Now()
	time.Sleep(d) // measuring an idle herd: nothing to wait for
	return (cpuTime(b) - c0).Seconds() / time.Since(t0).Seconds()
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probe records, for the n updates of one run, when each was written to
// server 0 and when each member's table first held it.
type probe struct {
	prefix  string           // client ids of this run: prefix + update index
	base    time.Time        // times are nanoseconds after base
	sent    []int64          // sent[k]: written by the sender only
	heldAt  [][]atomic.Int64 // heldAt[member][k]; 0: not yet
	holding []atomic.Int32   // members holding update k
	slots   chan struct{}    // one per update in flight; returned when every member holds it
}

// held is every table's change hook: it notes when member i holds an
// update of the current probe. It runs under the table's change lock, so
// it only stores a time and, for the last member, returns a slot.
func (sh *scaleHerd) held(i int, r location.Record) {
	p := sh.cur.Load()
	if p == nil || !strings.HasPrefix(r.Client, p.prefix) {
		return
	}
	k, err := strconv.Atoi(r.Client[len(p.prefix):])
	if err != nil || k < 0 || k >= len(p.sent) {
		return
	}
	p.heldAt[i][k].Store(max(int64(time.Since(p.base)), 1))
	if p.holding[k].Add(1) == int32(len(p.heldAt)) {
		p.slots <- struct{}{} // never blocks: at most cap(slots) are taken
	}
}

// scaleRun is what one run of updates measured.
type scaleRun struct {
	p                     *probe
	n                     int
	elapsed               time.Duration // from the first IAMAT until every member held the last update
	cpu                   time.Duration
	sent, received, drops int64
}

// run sends n IAMATs for new clients to server 0, at rate per second (0:
// as fast as window allows), never more than window of them not yet held
// by every member, and waits until every member holds every one.
func (sh *scaleHerd) run(b *testing.B, n int, rate float64, window int) *scaleRun {
	sh.phase++
	p := &probe{
		prefix: fmt.Sprintf("h50-%d-", sh.phase), sent: make([]int64, n),
		heldAt: make([][]atomic.Int64, len(sh.members)), holding: make([]atomic.Int32, n),
		slots: make(chan struct{}, window),
	}
	for i := range p.heldAt {
		p.heldAt[i] = make([]atomic.Int64, n)
	}
	for range window {
		p.slots <- struct{}{}
	}
	nc, err := net.Dial("tcp", sh.members[0].ClientAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	replies := make(chan error, 1)
	go func() { // replies are not needed; keep them from filling the socket
		r := bufio.NewReader(nc)
		for range n {
			if _, err := r.ReadSlice('\n'); err != nil {
				replies <- err
				return
			}
		}
		replies <- nil
	}()
	s0, r0, d0 := sh.linkTotals()
	p.base = time.Now()
	sh.cur.Store(p)
	defer sh.cur.Store(nil)
	b.ResetTimer()
	c0 := cpuTime(b)
	var line []byte
	for k := range n {
		if rate > 0 {
			if wait := time.Until(p.base.Add(time.Duration(float64(k) / rate * 1e9))); wait > 0 {
				time.Sleep(wait) // the schedule of an open-loop load
			}
		}
		sh.takeSlot(b, p, k)
		line = fmt.Appendf(line[:0], "IAMAT %s%d +34.068930-118.445127 1700000000.%09d\n", p.prefix, k, k+1)
		p.sent[k] = int64(time.Since(p.base))
		if _, err := nc.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	for range window { // every slot back: every member holds every update
		sh.takeSlot(b, p, n)
	}
	r := &scaleRun{p: p, n: n, elapsed: time.Since(p.base)}
	// The copies still on their way to servers that hold the update are
	// part of its cost.
	s1, r1, d1 := sh.quiet(b)
	r.cpu = cpuTime(b) - c0
	b.StopTimer()
	if err := <-replies; err != nil {
		b.Fatalf("reading replies: %v", err)
	}
	r.sent, r.received, r.drops = s1-s0, r1-r0, d1-d0
	return r
}

// quiet waits until every AT line sent over a link has been received and
// no queue holds any (three polls in a row, 2 ms apart, alike), and
// returns linkTotals then.
func (sh *scaleHerd) quiet(b *testing.B) (sent, received, drops int64) {
	var last [2]int64
	alike := 0
	waitFor(b, 10*time.Second, "the links to be quiet", func() bool {
		queued := 0
		for _, m := range sh.members {
			for _, l := range m.Peers.Links() {
				queued += l.Queued
			}
		}
		sent, received, drops = sh.linkTotals()
		if queued > 0 || sent != received || [2]int64{sent, received} != last {
			last, alike = [2]int64{sent, received}, 0
			return false
		}
		alike++
		return alike == 3
	})
	return sent, received, drops
}

// takeSlot waits for a free slot of p's window, failing after a minute.
func (sh *scaleHerd) takeSlot(b *testing.B, p *probe, k int) {
	select {
	case <-p.slots:
		return
	default:
	}
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-p.slots:
	case <-t.C:
		missing := 0
		for j := range min(k, len(p.holding)) {
			if int(p.holding[j].Load()) < len(sh.members) {
				missing++
			}
		}
		b.Fatalf("after a minute, %d of the first %d updates are not yet held by every server", missing, k)
	}
}

// report reports r's figures as benchmark metrics; hops are each
// member's distance from server 0, idle the herd's idle CPU seconds per
// second.
func (r *scaleRun) report(b *testing.B, hops []int, idle float64) {
	far := slices.Max(hops)
	toFar := make([]float64, r.n)
	toAll := make([]float64, r.n)
	for k := range r.n {
		var f, a int64
		for i, at := range r.p.heldAt {
			t := at[k].Load()
			if hops[i] == far {
				f = max(f, t)
			}
			a = max(a, t)
		}
		toFar[k] = float64(f-r.p.sent[k]) / 1e3
		toAll[k] = float64(a-r.p.sent[k]) / 1e3
	}
	slices.Sort(toFar)
	slices.Sort(toAll)
	n := float64(r.n)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(far), "hops-farthest")
	b.ReportMetric(float64(r.sent)/n, "msgs/update")
	b.ReportMetric(float64(r.received)/n, "recv-msgs/update")
	b.ReportMetric(quantile(toFar, 0.50), "p50-farthest-µs")
	b.ReportMetric(quantile(toFar, 0.99), "p99-farthest-µs")
	b.ReportMetric(quantile(toAll, 0.99), "p99-all-µs")
	b.ReportMetric(n/r.elapsed.Seconds(), "updates/s")
	b.ReportMetric(r.cpu.Seconds()*1e6/n, "cpu-µs/update")
	b.ReportMetric(max(r.cpu.Seconds()-idle*r.elapsed.Seconds(), 0)*1e6/n, "busy-cpu-µs/update")
	if r.drops > 0 {
		b.Logf("%d link connections were dropped or replaced during the run: its figures include catch-up", r.drops)
	}
}

// quantile is the q-quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(int(q*float64(len(xs))), len(xs)-1)]
}

// ringWithChords links each of n servers to those at each of the offsets,
// both ways round the ring.
func ringWithChords(n int, offsets ...int) [][]int {
	adj := make([][]int, n)
	for i := range n {
		for _, o := range offsets {
			for _, j := range []int{(i + o) % n, (i - o + n) % n} {
				if !slices.Contains(adj[i], j) {
					adj[i] = append(adj[i], j)
				}
			}
		}
	}
	return adj
}

// randomRegular returns a connected random d-regular graph on n servers,
// the same for the same seed: the pairing model (n·d half-links paired at
// random), drawn again until it has no self-link, no double link, and is
// connected.
func randomRegular(b *testing.B, n, d int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, seed))
	half := make([]int, n*d)
	for i := range half {
		half[i] = i / d
	}
	for range 100_000 {
		rng.Shuffle(len(half), func(i, j int) { half[i], half[j] = half[j], half[i] })
		adj := make([][]int, n)
		simple := true
		for i := 0; i < len(half) && simple; i += 2 {
			u, v := half[i], half[i+1]
			if u == v || slices.Contains(adj[u], v) {
				simple = false
			}
			adj[u], adj[v] = append(adj[u], v), append(adj[v], u)
		}
		if simple && connected(adj) {
			return adj
		}
	}
	b.Fatalf("no simple connected %d-regular graph on %d servers drawn", d, n)
	return nil
}

// hopsFrom is every server's distance in links from server o (-1: not
// reachable).
func hopsFrom(adj [][]int, o int) []int {
	dist := make([]int, len(adj))
	for i := range dist {
		dist[i] = -1
	}
	dist[o] = 0
	queue := []int{o}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range adj[u] {
			if dist[v] < 0 {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// connected reports whether every server reaches every other.
func connected(adj [][]int) bool { return !slices.Contains(hopsFrom(adj, 0), -1) }

// diameter is the longest shortest path between two servers.
func diameter(adj [][]int) int {
	d := 0
	for o := range adj {
		d = max(d, slices.Max(hopsFrom(adj, o)))
	}
	return d
}

// count is how many of xs are x.
func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// BenchmarkKnownClients reports the heap a one-server herd holds per
// known client, at 10,000, 100,000 and 1,000,000 clients reported with
// IAMATs on 4 pipelined connections (client ids like
// "client0000001.cs.ucla.edu", spread over the world), and the IAMAT rate
// of that loading; "full" is a member as it runs (table, spatial index,
// live log of the latest 65,536 changes), "table-only" one without the
// index and the live log:
//
//	go test ./internal/herd -run '^$' -bench BenchmarkKnownClients -benchtime 1x
func BenchmarkKnownClients(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, kind := range []string{"full", "table-only"} {
			b.Run(fmt.Sprintf("clients=%d/%s", n, kind), func(b *testing.B) {
				for b.Loop() {
					m := oneServer(b, Options{withoutLive: kind == "table-only"})
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					start := time.Now()
					reportClients(b, m.ClientAddr, 4, n)
					el := time.Since(start)
					waitFor(b, time.Minute, "every client in the table", func() bool { return m.Table.Len() == n })
					runtime.GC()
					runtime.ReadMemStats(&after)
					grown := float64(after.HeapAlloc) - float64(before.HeapAlloc)
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(grown/float64(n), "heap-B/client")
					b.ReportMetric(grown/(1<<20), "heap-MB")
					b.ReportMetric(float64(n)/el.Seconds(), "iamat/s")
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					m.h.Close(ctx)
					cancel()
				}
			})
		}
	}
}

// reportClients reports clients 0..n-1 once each with IAMATs, split over
// conns pipelined connections to addr, and waits for every reply.
func reportClients(b *testing.B, addr string, conns, n int) {
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Go(func() {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs[c] = err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Minute))
			mine := (n - c + conns - 1) / conns // ids i ≡ c (mod conns)
			go func() {
				w := bufio.NewWriterSize(nc, 64<<10)
				for i := c; i < n; i += conns {
					lat := float64(i*7919%17900)/100 - 89.5
					lon := float64(i*104723%35900)/100 - 179.5
					fmt.Fprintf(w, "IAMAT client%07d.cs.ucla.edu %+.6f%+.6f 1621464827.%09d\n", i, lat, lon, i)
				}
				w.Flush()
			}()
			r := bufio.NewReader(nc)
			for range mine {
				if _, err := r.ReadSlice('\n'); err != nil {
					errs[c] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}
