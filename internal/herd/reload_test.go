package herd

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herd/internal/config"
)

// reloadConfig is a herd of the servers in order on free ports, linked as
// links says ("A B" each), with short timers.
func reloadConfig(t *testing.T, servers []string, links ...string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("log_dir = \"\"\n[peer]\nretry_max = \"50ms\"\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "[[server]]\nname = %q\naddr = \"127.0.0.1:0\"\nneighbors = [", s)
		first := true
		for _, l := range links {
			if a, c, _ := strings.Cut(l, " "); a == s {
				if !first {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q", c)
				first = false
			}
		}
		b.WriteString("]\n")
	}
	cfg, err := config.Parse("reload.toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// linkUp reports whether m's link to peer is up.
func linkUp(m *Member, peer string) bool {
	for _, l := range m.Peers.Links() {
		if l.Peer == peer {
			return l.Up
		}
	}
	return false
}

// TestReloadChangesTopologyWhileClientsSend adds a server and links and
// removes a link from a running herd, while a client keeps reporting to
// one server: every report is answered with an AT line, and updates follow
// the new topology.
func TestReloadChangesTopologyWhileClientsSend(t *testing.T) {
	cfg := reloadConfig(t, []string{"A", "B", "C"}, "A B")
	h := startWith(t, Options{Config: cfg, Secrets: [][]byte{[]byte("a-real-secret-of-32-bytes-length")}})
	a := h.Member("A")

	// A client that keeps sending to A until the test ends.
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := dial(t, a.ClientAddr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.send(fmt.Sprintf("IAMAT steady +1+1 %d\n", 100+i))
			if got := c.line(); !strings.HasPrefix(got, "AT A ") {
				failed.Add(1)
			}
			sent.Add(1)
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		if failed.Load() != 0 {
			t.Errorf("%d of %d client requests failed during the reloads", failed.Load(), sent.Load())
		}
		if sent.Load() == 0 {
			t.Error("the client sent nothing")
		}
	}()

	// Add server D and the links B–C and C–D.
	next := reloadConfig(t, []string{"A", "B", "C", "D"}, "A B", "B C", "C D")
	notes, err := h.Reload(next, ReloadOptions{HasSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(notes, "\n"); !strings.Contains(joined, "started server D") || !strings.Contains(joined, "link to C added") {
		t.Fatalf("notes:\n%s", joined)
	}
	waitFor(t, 5*time.Second, "the new links up", func() bool {
		d := h.Member("D")
		return d != nil && linkUp(h.Member("B"), "C") && linkUp(h.Member("C"), "D") && linkUp(d, "C")
	})
	at := strings.TrimSuffix(ask(t, a.ClientAddr, "IAMAT via-new-links +2+2 1"), "\n")
	waitFor(t, 5*time.Second, "an update at A to reach D over the new links", func() bool {
		return known(h.Member("D"), "via-new-links") == at
	})

	// Drop A–B: A's updates stop at A; the rest of the herd is unaffected.
	last := reloadConfig(t, []string{"A", "B", "C", "D"}, "B C", "C D")
	notes, err = h.Reload(last, ReloadOptions{HasSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(notes, "\n"); !strings.Contains(joined, "A: link to B removed") {
		t.Fatalf("notes:\n%s", joined)
	}
	waitFor(t, 5*time.Second, "the A–B link down", func() bool { return !linkUp(h.Member("B"), "A") })
	ask(t, a.ClientAddr, "IAMAT island +3+3 1")
	at = strings.TrimSuffix(ask(t, h.Member("B").ClientAddr, "IAMAT mainland +4+4 1"), "\n")
	waitFor(t, 5*time.Second, "an update at B to reach D", func() bool { return known(h.Member("D"), "mainland") == at })
	if known(h.Member("B"), "island") != "" {
		t.Fatal("an update crossed a removed link")
	}
}

// TestReloadRefusesBadConfig: a config that would expose unauthenticated
// links, or that drops the server this process runs, changes nothing.
func TestReloadRefusesBadConfig(t *testing.T) {
	cfg := reloadConfig(t, []string{"A", "B"}, "A B")
	h := startWith(t, Options{Config: cfg, Names: []string{"A"}})
	open := reloadConfig(t, []string{"A", "B"}, "A B")
	open.Servers[0].Addr = "0.0.0.0:0"
	open.Servers[0].Advertise = "10.1.2.3:12000"
	if _, err := h.Reload(open, ReloadOptions{}); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("open listener: %v", err)
	}
	gone := reloadConfig(t, []string{"B"})
	if _, err := h.Reload(gone, ReloadOptions{}); err == nil || !strings.Contains(err.Error(), "this process runs A") {
		t.Fatalf("server dropped: %v", err)
	}
	if h.Member("A") == nil || len(h.Member("A").Peers.Links()) != 1 {
		t.Fatal("a refused reload changed the herd")
	}
}

// TestReloadLocationLimits: a reload's [locations] applies to the next
// update.
func TestReloadLocationLimits(t *testing.T) {
	cfg := reloadConfig(t, []string{"A"})
	h := startWith(t, Options{Config: cfg})
	a := h.Member("A")
	if got := ask(t, a.ClientAddr, "IAMAT one +1+1 1"); !strings.HasPrefix(got, "AT A ") {
		t.Fatalf("before: %q", got)
	}
	next := reloadConfig(t, []string{"A"})
	next.Locations.MaxClients = 1
	if _, err := h.Reload(next, ReloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, a.ClientAddr, "IAMAT two +1+1 1"); got != "? IAMAT two +1+1 1\n" {
		t.Fatalf("a new client past the reloaded max_clients: %q", got)
	}
}
