package herd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"herd/internal/places"
)

const iamat = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

func TestFloodReachesFarthestServer(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	reply := ask(t, h.Member("Hands").ClientAddr, iamat)
	if !strings.HasPrefix(reply, "AT Hands +") || !strings.HasSuffix(reply, " kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n") {
		t.Fatalf("reply %q", reply)
	}
	at := strings.TrimSuffix(reply, "\n")
	for _, m := range h.Members() {
		waitFor(t, 5*time.Second, m.Name+" to learn the location", func() bool { return known(m, "kiwi.cs.ucla.edu") == at })
	}
	// WHATSAT at Welsh (three hops from Hands) answers with Hands' AT line, byte for byte.
	c := dial(t, h.Member("Welsh").ClientAddr)
	c.send("WHATSAT kiwi.cs.ucla.edu 10 5\n")
	got, body := c.whatsatReply()
	if got != reply {
		t.Fatalf("WHATSAT at Welsh gave %q, want %q", got, reply)
	}
	if !strings.Contains(body, `"name" : "near 34.068930,-118.445127 r=10000"`) {
		t.Fatalf("body does not show the query: %s", body)
	}
}

func TestKilledMiddleServerIsRoutedAround(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	if err := h.Stop(context.Background(), "Goloman"); err != nil {
		t.Fatal(err)
	}
	reply := ask(t, h.Member("Hands").ClientAddr, "IAMAT around +1+1 100")
	at := strings.TrimSuffix(reply, "\n")
	// Hands–Wilkes–Holiday–Welsh avoids Goloman.
	waitFor(t, 5*time.Second, "Welsh to learn the location", func() bool { return known(h.Member("Welsh"), "around") == at })
}

func TestRestartedServerCatchesUp(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	welsh := h.Member("Welsh")
	addr := welsh.ClientAddr
	if err := h.Stop(context.Background(), "Welsh"); err != nil {
		t.Fatal(err)
	}
	// While Welsh is down, its only neighbour Holiday learns two updates.
	r1 := strings.TrimSuffix(ask(t, h.Member("Hands").ClientAddr, "IAMAT missed1 +10+10 100"), "\n")
	r2 := strings.TrimSuffix(ask(t, h.Member("Wilkes").ClientAddr, "IAMAT missed2 +20+20 200"), "\n")
	waitFor(t, 5*time.Second, "Holiday to learn both", func() bool {
		return known(h.Member("Holiday"), "missed1") == r1 && known(h.Member("Holiday"), "missed2") == r2
	})
	if err := h.Restart("Welsh", addr, addr); err != nil {
		t.Fatal(err)
	}
	// Reachable at once: the listener is up when Restart returns.
	c := dial(t, addr)
	welsh = h.Member("Welsh")
	waitFor(t, 5*time.Second, "Welsh to catch up", func() bool {
		return known(welsh, "missed1") == r1 && known(welsh, "missed2") == r2
	})
	c.send("WHATSAT missed2 1 1\n")
	if got, _ := c.whatsatReply(); got != r2+"\n" {
		t.Fatalf("Welsh answered %q, want %q", got, r2)
	}
	// An update at the restarted server floods out again.
	r3 := strings.TrimSuffix(ask(t, addr, "IAMAT back +30+30 300"), "\n")
	waitFor(t, 5*time.Second, "Hands to learn Welsh's update", func() bool { return known(h.Member("Hands"), "back") == r3 })
}

func TestConcurrentUpdatesConverge(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	ms := h.Members()
	var wg sync.WaitGroup
	// Every server gets IAMATs for the same client; times collide on purpose
	// (equal times at different servers exercise the tie-break).
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, m.ClientAddr)
			for k := range 50 {
				c.send(fmt.Sprintf("IAMAT shared +%d+%d %d.%d\n", i, k, k, i%2))
				c.line()
			}
		}()
	}
	wg.Wait()
	var first string
	waitFor(t, 5*time.Second, "every server to hold the same record", func() bool {
		first = known(ms[0], "shared")
		for _, m := range ms[1:] {
			if known(m, "shared") != first {
				return false
			}
		}
		return true
	})
	if !strings.HasSuffix(first, " 49.1") {
		t.Fatalf("converged on %q, want the newest time 49.1", first)
	}
}

func TestPipelinedSlowWhatsatKeepsOrder(t *testing.T) {
	release := make(chan struct{})
	f := &fakeFinder{}
	f.fn = func(ctx context.Context, q places.Query) (*places.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &places.Response{Status: places.StatusZeroResults}, nil
	}
	h := startHerd(t, defaultConfig(t), f)
	addr := h.Member("Goloman").ClientAddr
	ask(t, addr, "IAMAT a +1+1 1")
	c := dial(t, addr)
	// Pipelined, then half-closed: WHATSAT (slow), IAMAT, junk, and a last line without LF.
	c.send("WHATSAT a 5 3\nIAMAT b +2+2 2\r\nnonsense here\nIAMAT c +3+3 3")
	c.nc.(*net.TCPConn).CloseWrite()
	// The IAMAT after the slow WHATSAT is processed (and flooded) at once...
	waitFor(t, 5*time.Second, "b to reach Welsh while the WHATSAT waits", func() bool { return known(h.Member("Welsh"), "b") != "" })
	close(release)
	// ...but its reply comes after the WHATSAT's.
	at, body := c.whatsatReply()
	if !strings.HasPrefix(at, "AT Goloman ") || !strings.Contains(body, `"status" : "ZERO_RESULTS"`) {
		t.Fatalf("WHATSAT reply %q %q", at, body)
	}
	if got := c.line(); !strings.HasPrefix(got, "AT Goloman ") || !strings.HasSuffix(got, " b +2+2 2\n") {
		t.Fatalf("second reply %q", got)
	}
	if got := c.line(); got != "? nonsense here\n" {
		t.Fatalf("third reply %q", got)
	}
	if got := c.line(); !strings.HasSuffix(got, " c +3+3 3\n") {
		t.Fatalf("last reply %q", got)
	}
	if rest, err := io.ReadAll(c.r); err != nil || len(rest) != 0 {
		t.Fatalf("after the last reply: %q, %v (want EOF)", rest, err)
	}
}

func TestStaleIAMATGetsStoredLine(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	g := h.Member("Goloman").ClientAddr
	first := ask(t, g, "IAMAT s +1+1 10.5")
	if again := ask(t, g, "IAMAT s +1+1 10.5"); again != first {
		t.Fatalf("retransmission got %q, want %q", again, first)
	}
	if older := ask(t, g, "IAMAT s +9+9 10.4"); older != first {
		t.Fatalf("older IAMAT got %q, want %q", older, first)
	}
	// At another server, the stale IAMAT is answered with the original line too.
	waitFor(t, 5*time.Second, "Hands to learn s", func() bool { return known(h.Member("Hands"), "s") != "" })
	if other := ask(t, h.Member("Hands").ClientAddr, "IAMAT s +1+1 10.5"); other != first {
		t.Fatalf("Hands answered %q, want %q", other, first)
	}
}

func TestInvalidInput(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	c := dial(t, h.Member("Wilkes").ClientAddr)
	for _, tc := range []struct{ in, want string }{
		{"WHATSAT nobody 10 5\n", "? WHATSAT nobody 10 5\n"},
		{"IAMAT a +91+0 1\r\n", "? IAMAT a +91+0 1\n"},
		{"\n", "? \n"},
		{"AT Goloman +0.100000000 evil +1+1 99999999999\n", "? AT Goloman +0.100000000 evil +1+1 99999999999\n"},
		{"  IAMAT  ok  +1+1  1  \n", "AT Wilkes"},
	} {
		c.send(tc.in)
		if got := c.line(); !strings.HasPrefix(got, tc.want) {
			t.Fatalf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	if known(h.Member("Wilkes"), "evil") != "" {
		t.Fatal("an AT line from a client changed the table")
	}
}

func TestStuckNeighbourDoesNotBlockClients(t *testing.T) {
	// A "neighbour" that accepts connections and never reads.
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var held []net.Conn
	var mu sync.Mutex
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			nc, err := stuck.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	defer func() {
		stuck.Close()
		<-acceptDone
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	}()
	cfg := defaultConfig(t)
	cfg.Peer.QueueSize = 64
	// Run only Goloman; its neighbour Hands is the stuck listener, which
	// does hold a link: the test speaks the handshake for it.
	cfg.Servers[1].Addr = stuck.Addr().String()
	h, err := Start(Options{Config: cfg, Names: []string{"Goloman"}, NewFinder: func(string) places.Finder { return &fakeFinder{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	g := h.Member("Goloman")
	// Make the stuck neighbour a real link: dial Goloman as Hands, then never read.
	nc, err := net.Dial("tcp", g.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "HERD-PEER 2 Hands Goloman 0123456789abcdef0123456789abcdef\n")
	buf := make([]byte, 200)
	n, _ := nc.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HERD-PEER-OK 2 Goloman ") {
		t.Fatalf("handshake reply %q", buf[:n])
	}
	fmt.Fprintf(nc, "HERD-PEER-AUTH -\n")
	waitFor(t, 5*time.Second, "the link to Hands", func() bool {
		for _, l := range g.Peers.Links() {
			if l.Peer == "Hands" && l.Up {
				return true
			}
		}
		return false
	})
	// Far more updates than the socket buffers and the queue hold.
	c := dial(t, g.ClientAddr)
	const n2 = 20000
	go func() {
		var b strings.Builder
		for i := range n2 {
			fmt.Fprintf(&b, "IAMAT client%d +1+1 %d\n", i, i)
		}
		c.nc.Write([]byte(b.String()))
	}()
	for i := range n2 {
		if got := c.line(); !strings.HasPrefix(got, "AT Goloman ") {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	// The stuck neighbour was dropped rather than waited on.
	var dropped int64
	for _, l := range g.Peers.Links() {
		if l.Peer == "Hands" {
			dropped = l.Dropped
		}
	}
	if dropped == 0 {
		t.Fatal("no update was dropped for the stuck neighbour; was it really stuck?")
	}
}

func TestOneShotAndLongLines(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Client.OneShot = true
	cfg.Client.MaxLineBytes = 128
	h := startHerd(t, cfg, nil)
	addr := h.Member("Holiday").ClientAddr
	c := dial(t, addr)
	c.send("IAMAT x +1+1 1\nIAMAT y +1+1 1\n")
	if got := c.line(); !strings.HasPrefix(got, "AT Holiday ") {
		t.Fatalf("reply %q", got)
	}
	if rest, err := io.ReadAll(c.r); err != nil || len(rest) != 0 {
		t.Fatalf("one_shot: after the first reply got %q, %v", rest, err)
	}
	c = dial(t, addr)
	c.send("IAMAT " + strings.Repeat("z", 200) + " +1+1 1\n")
	// The server closes with input unread, so the close may arrive as a reset.
	if rest, err := io.ReadAll(c.r); len(rest) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("long line: got %q, %v; want the connection closed", rest, err)
	}
}
