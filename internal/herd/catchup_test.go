package herd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/faultproxy"
	"herd/internal/peer"
	"herd/internal/places"
)

// pair runs servers A and B in two separate herds whose link passes
// through fault proxies, one for each direction of dialing.
type pair struct {
	a, b     *Member
	toA, toB *faultproxy.Proxy
}

func startPair(t *testing.T) *pair {
	t.Helper()
	toB, err := faultproxy.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toB.Close() })
	mk := func(bAddr, aAddr string) *config.Config {
		cfg := defaultConfig(t)
		cfg.Servers = []config.Server{
			{Name: "A", Addr: aAddr, Neighbors: []string{"B"}},
			{Name: "B", Addr: bAddr},
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	f := func(string) places.Finder { return &fakeFinder{} }
	ha, err := Start(Options{Config: mk(toB.Addr(), "127.0.0.1:0"), Names: []string{"A"}, NewFinder: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ha.Close(context.Background()) })
	toA, err := faultproxy.New(ha.Member("A").ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toA.Close() })
	hb, err := Start(Options{Config: mk("127.0.0.1:0", toA.Addr()), Names: []string{"B"}, NewFinder: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.Close(context.Background()) })
	toB.SetTarget(hb.Member("B").ClientAddr)
	p := &pair{a: ha.Member("A"), b: hb.Member("B"), toA: toA, toB: toB}
	waitFor(t, 5*time.Second, "the A–B link", func() bool { return linkOf(p.a, "B").Up && linkOf(p.b, "A").Up })
	return p
}

func linkOf(m *Member, peerName string) peer.LinkState {
	for _, l := range m.Peers.Links() {
		if l.Peer == peerName {
			return l
		}
	}
	return peer.LinkState{}
}

// load sends n IAMATs for clients prefix0..prefix(n-1) at time tm on one
// pipelined connection and waits for every reply.
func load(t *testing.T, addr, prefix string, n int, tm int) {
	t.Helper()
	c := dial(t, addr)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "IAMAT %s%d +1+1 %d\n", prefix, i, tm)
	}
	go c.nc.Write([]byte(b.String()))
	for range n {
		if got := c.line(); !strings.HasPrefix(got, "AT ") {
			t.Fatalf("reply %q", got)
		}
	}
}

// TestCatchUpSendsOnlyWhatChanged: after a partition, each side sends the
// other only the records that changed meanwhile, not its whole table.
func TestCatchUpSendsOnlyWhatChanged(t *testing.T) {
	const clients, movedAtA, movedAtB = 5000, 100, 30
	p := startPair(t)
	load(t, p.a.ClientAddr, "c", clients, 1)
	waitFor(t, 10*time.Second, "B to learn every client", func() bool { return p.b.Table.Len() == clients })
	waitFor(t, 5*time.Second, "each side's position to reach the other's last change", func() bool {
		return linkOf(p.b, "A").Pos.Seq == p.a.Table.Seq() && linkOf(p.a, "B").Pos.Seq == p.b.Table.Seq()
	})

	p.toA.SetMode(faultproxy.Cut)
	p.toB.SetMode(faultproxy.Cut)
	waitFor(t, 5*time.Second, "the link to go down", func() bool { return !linkOf(p.a, "B").Up && !linkOf(p.b, "A").Up })
	beforeA, beforeB := linkOf(p.a, "B"), linkOf(p.b, "A")
	load(t, p.a.ClientAddr, "c", movedAtA, 2)                         // clients c0..c99 move at A
	load(t, p.b.ClientAddr, fmt.Sprintf("c%d", clients), movedAtB, 3) // new clients at B
	p.toA.SetMode(faultproxy.Pass)
	p.toB.SetMode(faultproxy.Pass)

	waitFor(t, 5*time.Second, "both sides to catch up", func() bool {
		r, _ := p.b.Table.Get(fmt.Sprintf("c%d", movedAtA-1))
		return strings.HasSuffix(r.Line, " 2") && p.a.Table.Len() == clients+movedAtB
	})
	// Each side sends what changed on it while the link was down. When the
	// link comes up on two connections at once (both sides dial), the
	// second may repeat the first's catch-up: at most twice, never the table.
	const most = 2 * (movedAtA + movedAtB)
	afterA, afterB := linkOf(p.a, "B"), linkOf(p.b, "A")
	if got := afterA.SyncRecords - beforeA.SyncRecords; got < movedAtA || got > most {
		t.Errorf("A sent %d records to catch B up, want %d..%d (of %d clients)", got, movedAtA, most, clients)
	}
	if got := afterB.SyncRecords - beforeB.SyncRecords; got < movedAtB || got > most {
		t.Errorf("B sent %d records to catch A up, want %d..%d", got, movedAtB, most)
	}
	if bytes := afterA.SyncBytes - beforeA.SyncBytes; bytes > most*100 {
		t.Errorf("A sent %d bytes of catch-up for %d records", bytes, movedAtA)
	}
}

// TestFreshNeighbourGetsEverything: a neighbour that lost its state gets a
// full copy.
func TestFreshNeighbourGetsEverything(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	load(t, h.Member("Goloman").ClientAddr, "f", 300, 1)
	waitFor(t, 5*time.Second, "Welsh to learn everything", func() bool { return h.Member("Welsh").Table.Len() == 300 })
	addr := h.Member("Welsh").ClientAddr
	if err := h.Stop(context.Background(), "Welsh"); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart("Welsh", addr, addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the restarted Welsh to get a full copy", func() bool { return h.Member("Welsh").Table.Len() == 300 })
}
