package herd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/places"
	"herd/internal/protocol"

	"herd/internal/testnet"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

// startSplit runs the default herd as two herds in this process: Goloman
// with the [locations] of loose, every other server with those of strict.
// Goloman thus floods records that its neighbours' limits refuse, as a
// server with other settings (or an older version) would.
func startSplit(t *testing.T, loose, strict config.LocationsConfig) (golo *Herd, rest *Herd) {
	t.Helper()
	base := defaultConfig(t)
	for i := range base.Servers {
		base.Servers[i].Addr = freeAddr(t)
		base.Servers[i].Metrics = ""
	}
	start := func(lc config.LocationsConfig, names ...string) *Herd {
		cfg := *base
		cfg.Locations = lc
		h, err := Start(Options{Config: &cfg, Names: names, NewFinder: func(string) places.Finder { return &fakeFinder{} }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h.Close(ctx)
		})
		return h
	}
	golo = start(loose, "Goloman")
	rest = start(strict, "Hands", "Holiday", "Welsh", "Wilkes")
	waitFor(t, 10*time.Second, "links up across both herds", func() bool {
		for _, h := range []*Herd{golo, rest} {
			for _, m := range h.Members() {
				for _, l := range m.Peers.Links() {
					if !l.Up {
						return false
					}
				}
			}
		}
		return true
	})
	return golo, rest
}

// TestFutureTimeRefused: an IAMAT timed beyond max_clock_skew is answered
// "? ", and a neighbour's record timed beyond it is dropped and counted, so
// the client's real reports still win everywhere.
func TestFutureTimeRefused(t *testing.T) {
	skew := config.LocationsConfig{MaxClockSkew: config.Duration{D: time.Hour}}
	golo, rest := startSplit(t, config.LocationsConfig{}, skew)
	const future = "IAMAT kiwi +34.068930-118.445127 9223372036854775807.999999999"
	if got := ask(t, rest.Member("Hands").ClientAddr, future); got != "? "+future+"\n" {
		t.Fatalf("far-future IAMAT answered %q", got)
	}
	// Goloman has no bound: it stores the record and floods it.
	if got := ask(t, golo.Member("Goloman").ClientAddr, future); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("Goloman without a bound answered %q", got)
	}
	// Hands refuses the client's line and then at least Goloman's record.
	for name, want := range map[string]uint64{"Hands": 2, "Holiday": 1, "Wilkes": 1} {
		m := rest.Member(name)
		waitFor(t, 5*time.Second, name+" to drop the far-future record", func() bool { return m.Table.Stats().RejectedFuture >= want })
	}
	hands := rest.Member("Hands")
	now := time.Now().Unix()
	real := fmt.Sprintf("IAMAT kiwi +1+1 %d.5", now)
	got := ask(t, hands.ClientAddr, real)
	if !strings.HasPrefix(got, "AT Hands ") {
		t.Fatalf("the real report answered %q", got)
	}
	welsh := rest.Member("Welsh")
	waitFor(t, 5*time.Second, "the real report to reach Welsh", func() bool { return known(welsh, "kiwi")+"\n" == got })
	// Just within the bound is fine.
	soon := fmt.Sprintf("IAMAT kiwi +1+1 %d", now+3500)
	if got := ask(t, hands.ClientAddr, soon); !strings.HasPrefix(got, "AT Hands ") {
		t.Fatalf("a time within max_clock_skew answered %q", got)
	}
}

// TestFullTable: at max_clients a new client's IAMAT is answered "? ",
// known clients still update, and a neighbour's records for new clients
// are dropped and counted.
func TestFullTable(t *testing.T) {
	full := config.LocationsConfig{MaxClients: 2}
	golo, rest := startSplit(t, config.LocationsConfig{}, full)
	hands, welsh := rest.Member("Hands"), rest.Member("Welsh")
	for _, id := range []string{"a", "b"} {
		if got := ask(t, hands.ClientAddr, "IAMAT "+id+" +1+1 1"); !strings.HasPrefix(got, "AT Hands ") {
			t.Fatalf("IAMAT %s answered %q", id, got)
		}
	}
	waitFor(t, 5*time.Second, "a and b at Welsh", func() bool { return welsh.Table.Len() == 2 })
	if got := ask(t, hands.ClientAddr, "IAMAT c +1+1 1"); got != "? IAMAT c +1+1 1\n" {
		t.Fatalf("a new client in a full table got %q", got)
	}
	if got := ask(t, hands.ClientAddr, "IAMAT a +2+2 2"); !strings.HasPrefix(got, "AT Hands ") {
		t.Fatalf("a known client's update in a full table got %q", got)
	}
	waitFor(t, 5*time.Second, "a's update at Welsh", func() bool { return strings.HasSuffix(known(welsh, "a"), " 2") })
	// Goloman has room: its record for d is dropped by the others.
	if got := ask(t, golo.Member("Goloman").ClientAddr, "IAMAT d +1+1 1"); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("Goloman answered %q", got)
	}
	for _, name := range []string{"Hands", "Holiday", "Wilkes"} {
		m := rest.Member(name)
		waitFor(t, 5*time.Second, name+" to drop d", func() bool { return m.Table.Stats().RejectedFull > 0 })
		if m.Table.Len() != 2 || known(m, "d") != "" {
			t.Fatalf("%s holds %d clients, d=%q", name, m.Table.Len(), known(m, "d"))
		}
	}
}

// TestTTLConverges: with a ttl, every server forgets a location once its
// client time is older than now − ttl, whether it got it from a client or
// a neighbour; a neighbour's record already that old is refused.
func TestTTLConverges(t *testing.T) {
	const ttl = 3 * time.Second
	lc := config.LocationsConfig{TTL: config.Duration{D: ttl}}
	golo, rest := startSplit(t, lc, lc)
	goloman, welsh := golo.Member("Goloman"), rest.Member("Welsh")
	// Timed so that it expires about a second from now, by client time.
	born := time.Now().Add(-ttl + time.Second)
	line := fmt.Sprintf("IAMAT fleeting +1+1 %d.%09d", born.Unix(), born.Nanosecond())
	got := ask(t, goloman.ClientAddr, line)
	if !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("IAMAT answered %q", got)
	}
	waitFor(t, 5*time.Second, "the location at Welsh", func() bool { return known(welsh, "fleeting")+"\n" == got })
	for _, c := range []struct {
		h    *Herd
		name string
	}{{golo, "Goloman"}, {rest, "Welsh"}, {rest, "Hands"}} {
		m := c.h.Member(c.name)
		waitFor(t, 10*time.Second, c.name+" to forget the location", func() bool {
			return m.Table.Len() == 0 && m.Table.Stats().Expired == 1
		})
		if got := ask(t, m.ClientAddr, "WHATSAT fleeting 10 5"); got != "? WHATSAT fleeting 10 5\n" {
			t.Fatalf("%s: WHATSAT for an expired client answered %q", c.name, got)
		}
	}
	// Already older than the ttl: refused from a client, and not stored by
	// anyone.
	old := fmt.Sprintf("IAMAT stale +1+1 %d", time.Now().Add(-2*ttl).Unix())
	if got := ask(t, goloman.ClientAddr, old); got != "? "+old+"\n" {
		t.Fatalf("an expired IAMAT answered %q", got)
	}
	if goloman.Table.Stats().RejectedExpired != 1 {
		t.Fatalf("Goloman counted %+v", goloman.Table.Stats())
	}
}

// TestExpiredPeerRecordRefused: a server with a ttl refuses a neighbour's
// record that is already older than it.
func TestExpiredPeerRecordRefused(t *testing.T) {
	golo, rest := startSplit(t, config.LocationsConfig{}, config.LocationsConfig{TTL: config.Duration{D: time.Hour}})
	if got := ask(t, golo.Member("Goloman").ClientAddr, "IAMAT ancient +1+1 1"); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("Goloman answered %q", got)
	}
	hands := rest.Member("Hands")
	waitFor(t, 5*time.Second, "Hands to refuse the record", func() bool { return hands.Table.Stats().RejectedExpired > 0 })
	if known(hands, "ancient") != "" {
		t.Fatal("Hands stored an expired record")
	}
}

// TestLargestIAMATCrossesHerd: the longest IAMAT a server accepts, at the
// server with the longest name and with the longest time difference,
// reaches the farthest server without any link dropping.
func TestLargestIAMATCrossesHerd(t *testing.T) {
	cfg := defaultConfig(t)
	long := strings.Repeat("H", protocol.MaxServerName)
	rename := func(s string) string {
		if s == "Hands" {
			return long
		}
		return s
	}
	for i := range cfg.Servers {
		cfg.Servers[i].Name = rename(cfg.Servers[i].Name)
		for j, n := range cfg.Servers[i].Neighbors {
			cfg.Servers[i].Neighbors[j] = rename(n)
		}
	}
	cfg.Client.MaxLineBytes = protocol.MaxClientLineBytes
	cfg.Locations.MaxClockSkew.D = 0 // no bound: the largest time, the longest difference
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, cfg, nil)
	// Each link's connections established and connections ended by
	// reason: a link the update made fail changes them.
	links := func() string {
		out := map[string]string{}
		for _, m := range h.Members() {
			for _, l := range m.Peers.Links() {
				out[m.Name[:min(len(m.Name), 8)]+"-"+l.Peer[:min(len(l.Peer), 8)]] = fmt.Sprint(l.Reconnects, l.Down)
			}
		}
		return fmt.Sprint(out)
	}
	// Right after start, links that both sides dialled at once may still
	// be settling on one connection: wait until nothing changes for 300ms.
	last, since := links(), time.Now()
	waitFor(t, 10*time.Second, "links to settle", func() bool {
		if now := links(); now != last {
			last, since = now, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
	before := links()
	id := strings.Repeat("k", protocol.MaxClientID)
	head, tail := "IAMAT "+id+" +1.", "+1 9223372036854775807.999999999"
	line := head + strings.Repeat("5", protocol.MaxClientLineBytes-1-len(head)-len(tail)) + tail
	if len(line)+1 != protocol.MaxClientLineBytes {
		t.Fatalf("line of %d bytes", len(line)+1)
	}
	c := dial(t, h.Member(long).ClientAddr)
	c.send(line + "\n")
	got := c.line()
	if !strings.HasPrefix(got, "AT "+long+" -") {
		t.Fatalf("answered %.100q", got)
	}
	t.Logf("AT line of %d bytes (MaxRecordBytes %d)", len(got)-1, protocol.MaxRecordBytes)
	welsh := h.Member("Welsh")
	waitFor(t, 10*time.Second, "the update at Welsh", func() bool { return known(welsh, id)+"\n" == got })
	// A second update crosses too: the links are still usable.
	c.send(strings.Replace(line, "+1.5", "+1.6", 1) + "\n")
	got = c.line()
	waitFor(t, 10*time.Second, "the second update at Welsh", func() bool { return known(welsh, id)+"\n" == got })
	if after := links(); after != before {
		t.Fatalf("links dropped or reconnected:\nbefore %s\nafter  %s", before, after)
	}
}

// TestConnectionsPerIP: past max_conns_per_ip, a new connection from the
// same IP is closed at once (and counted); other IPs, and the same IP once
// a connection ends, are still served.
func TestConnectionsPerIP(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Client.MaxConnsPerIP = 2
	for i := range cfg.Servers {
		cfg.Servers[i].PeerAddr = "127.0.0.1:0" // links elsewhere: only clients on the client port
	}
	h := startHerd(t, cfg, nil)
	g := h.Member("Goloman")
	var held []*client
	for i := range 2 {
		c := dial(t, g.ClientAddr)
		c.send(fmt.Sprintf("IAMAT held%d +1+1 1\n", i))
		if got := c.line(); !strings.HasPrefix(got, "AT Goloman ") {
			t.Fatalf("connection %d answered %q", i, got)
		}
		held = append(held, c)
	}
	extra := dial(t, g.ClientAddr)
	extra.send("IAMAT extra +1+1 1\n")
	closedByServer(t, extra, "a third connection from one IP")
	if known(g, "extra") != "" {
		t.Fatal("the refused connection's IAMAT was applied")
	}
	// Another loopback address is another IP.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", g.ClientAddr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	other := &client{t: t, nc: nc, r: bufio.NewReader(nc)}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	other.send("IAMAT other +1+1 1\n")
	if got := other.line(); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("a client from another IP got %q", got)
	}
	held[0].nc.Close()
	waitFor(t, 5*time.Second, "a place for 127.0.0.1 again", func() bool {
		c := dial(t, g.ClientAddr)
		defer c.nc.Close()
		c.send("IAMAT again +1+1 1\n")
		c.nc.SetReadDeadline(time.Now().Add(time.Second))
		got, err := c.r.ReadString('\n')
		return err == nil && strings.HasPrefix(got, "AT Goloman ")
	})
	text := get(t, "http://"+g.MetricsAddr+"/metrics")
	if !strings.Contains(text, `herd_client_connections_rejected_total{limit="max_conns_per_ip",server="Goloman"} `) ||
		strings.Contains(text, `herd_client_connections_rejected_total{limit="max_conns_per_ip",server="Goloman"} 0`) {
		t.Fatalf("refusals not counted:\n%s", grep(text, "rejected"))
	}
}

// TestLimitMetrics: refusals and expiry are on /metrics.
func TestLimitMetrics(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Locations.MaxClients = 1
	h := startHerd(t, cfg, nil)
	g := h.Member("Goloman")
	ask(t, g.ClientAddr, "IAMAT one +1+1 1")
	ask(t, g.ClientAddr, "IAMAT two +1+1 1")
	ask(t, g.ClientAddr, "IAMAT one +1+1 9223372036854775807")
	text := get(t, "http://"+g.MetricsAddr+"/metrics")
	for _, want := range []string{
		`herd_updates_rejected_total{reason="full",server="Goloman"} 1`,
		`herd_updates_rejected_total{reason="future",server="Goloman"} 1`,
		`herd_updates_rejected_total{reason="expired",server="Goloman"} 0`,
		`herd_clients_expired_total{server="Goloman"} 0`,
		`herd_commands_total{command="IAMAT",outcome="refused",server="Goloman"} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s\n%s", want, grep(text, "rejected"))
		}
	}
}
