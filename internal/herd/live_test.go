package herd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/faultproxy"
	"herd/internal/httpapi"
	"herd/internal/location"
	"herd/internal/places"
)

// sseEvent is one event read from a stream.
type sseEvent struct {
	id, event, data string
}

// sseStream is an open GET /v1/stream.
type sseStream struct {
	t      testing.TB
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	lastID string // of the last event returned by next
}

// openStream opens a stream at a member's http listener; query is the
// filter ("" for none) and lastID the Last-Event-ID ("" for none).
func openStream(t testing.TB, addr, query, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/stream?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, res: res, events: make(chan sseEvent, 10000), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// read parses events (comments and id-only blocks included, as empty
// events) until the stream ends.
func (s *sseStream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.res.Body)
	sc.Buffer(nil, 1<<20)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			s.events <- e
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		case strings.HasPrefix(line, ":"):
			e.event = "comment"
		}
	}
}

// next returns the next named event (not a comment or an id alone).
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if e.id != "" {
				s.lastID = e.id
			}
			if e.event != "" && e.event != "comment" {
				return e
			}
		case <-timeout:
			s.t.Fatal("no event within 10s")
		}
	}
}

// client returns the "client" of an event's data.
func (e sseEvent) client(t testing.TB) string {
	var v struct{ Client string }
	if err := json.Unmarshal([]byte(e.data), &v); err != nil {
		t.Fatalf("event data %q: %v", e.data, err)
	}
	return v.Client
}

// TestStreamAtTheFarthestServer: an update at Hands appears on a stream at
// Welsh, three links away, as a location event with the stored AT line.
func TestStreamAtTheFarthestServer(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	s := openStream(t, h.Member("Welsh").HTTPAddr, "", "")
	s.next2(t) // the opening id
	got := ask(t, h.Member("Hands").ClientAddr, "IAMAT kiwi +34.068930-118.445127 1621464827.959498503")
	e := s.next()
	var loc httpapi.Location
	if err := json.Unmarshal([]byte(e.data), &loc); err != nil {
		t.Fatal(err)
	}
	if e.event != "location" || loc.At+"\n" != got || loc.Server != "Hands" || e.id == "" {
		t.Fatalf("event %+v, want the AT line %q", e, got)
	}
}

// next2 waits for the id-only block a fresh stream starts with.
func (s *sseStream) next2(t testing.TB) {
	t.Helper()
	select {
	case e := <-s.events:
		if e.id == "" {
			t.Fatalf("a fresh stream starts with %+v, want an id", e)
		}
		s.lastID = e.id
	case <-time.After(10 * time.Second):
		t.Fatal("no opening id")
	}
}

// TestFenceWalk: a client walking through a fence gives enter, location,
// exit in order; deleted inside, exit; clients elsewhere give nothing.
func TestFenceWalk(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	// A 1 km fence around UCLA, watched at Welsh; the client reports at Goloman.
	s := openStream(t, h.Member("Welsh").HTTPAddr, "lat=34.0689&lon=-118.4452&radius_km=1", "")
	c := dial(t, h.Member("Goloman").ClientAddr)
	walk := []string{"+34.0500-118.4452", "+34.0650-118.4452", "+34.0689-118.4452", "+34.0800-118.4452", "+34.0689-118.4452"}
	for i, loc := range walk {
		c.send(fmt.Sprintf("IAMAT walker %s %d\n", loc, 1000+i))
		c.line()
		c.send(fmt.Sprintf("IAMAT elsewhere +10-10 %d\n", 1000+i))
		c.line()
	}
	want := []string{"enter", "location", "exit", "enter"}
	for i, w := range want {
		e := s.next()
		if e.event != w || e.client(t) != "walker" {
			t.Fatalf("event %d: %+v, want %s of walker", i, e, w)
		}
		if !strings.Contains(e.data, `"distance_m":`) {
			t.Fatalf("fence event without distance: %s", e.data)
		}
	}
	code, body, _ := httpDo(t, nil, "DELETE", "http://"+h.Member("Hands").HTTPAddr+"/v1/clients/walker", "", nil)
	if code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	e := s.next()
	if e.event != "exit" || e.client(t) != "walker" || !strings.Contains(e.data, `"reason":"deleted"`) {
		t.Fatalf("after the deletion: %+v, want exit (deleted)", e)
	}
}

// TestStreamResume: a consumer that reconnects with Last-Event-ID misses
// nothing; one whose position the log no longer holds gets a reset and the
// current state.
func TestStreamResume(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	g := h.Member("Goloman")
	c := dial(t, g.ClientAddr)
	report := func(id string, tm int) {
		c.send(fmt.Sprintf("IAMAT %s +1+1 %d\n", id, tm))
		c.line()
	}
	s := openStream(t, g.HTTPAddr, "", "")
	s.next2(t)
	report("a", 1)
	report("b", 1)
	if e := s.next(); e.client(t) != "a" {
		t.Fatalf("%+v", e)
	}
	last := s.lastID
	s.close()
	// Missed while away: b (already sent, maybe not read), c, a again, and a deletion.
	report("c", 1)
	report("a", 2)
	if code, body, _ := httpDo(t, nil, "DELETE", "http://"+g.HTTPAddr+"/v1/clients/c", "", nil); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	s = openStream(t, g.HTTPAddr, "", last)
	var got []string
	for range 4 {
		e := s.next()
		got = append(got, e.event+":"+e.client(t))
	}
	if want := "location:b location:c location:a delete:c"; strings.Join(got, " ") != want {
		t.Fatalf("after resuming: %v, want %s", got, want)
	}
	// A position from another history of this server: reset and the current state.
	s = openStream(t, g.HTTPAddr, "client=a&client=b", "1-1")
	if e := s.next(); e.event != "reset" || e.id == "" {
		t.Fatalf("%+v, want reset", e)
	}
	state := map[string]bool{}
	for range 2 {
		e := s.next()
		if e.event != "location" {
			t.Fatalf("state: %+v", e)
		}
		state[e.client(t)] = true
	}
	if !state["a"] || !state["b"] {
		t.Fatalf("state %v", state)
	}
}

// TestStuckConsumerIsCutOff: a consumer that never reads is cut off,
// while the server keeps answering IAMATs at full speed.
func TestStuckConsumerIsCutOff(t *testing.T) {
	cfg := httpConfig(t)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Config: cfg, NewFinder: func(string) places.Finder { return &fakeFinder{} },
		HTTPOptions: func(_ string, o *httpapi.Options) {
			o.StreamWriteTimeout = 300 * time.Millisecond
			o.StreamBuffer = 1000
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	m := h.Member(cfg.Servers[0].Name)
	const n = 20000
	burst := func(round int) time.Duration {
		start := time.Now()
		load(t, m.ClientAddr, fmt.Sprintf("r%d-", round), n, 1000+round)
		return time.Since(start)
	}
	base := min(burst(0), burst(1))

	// A consumer that opens a stream and never reads a byte.
	nc := dial(t, m.HTTPAddr)
	nc.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, 5*time.Second, "the stream to open", func() bool { return gathered(t, m, "herd_streams_open") == 1 })
	stuck := min(burst(2), burst(3))
	if stuck > 4*base+time.Second {
		t.Errorf("with a stuck consumer %d IAMATs took %v, against %v without", n, stuck, base)
	}
	waitFor(t, 10*time.Second, "the stuck consumer to be cut off", func() bool {
		return gathered(t, m, "herd_streams_cut_off_total") >= 1 && gathered(t, m, "herd_streams_open") == 0
	})
	t.Logf("%d IAMATs: %v without a stream, %v with a stuck one", n, base, stuck)
}

// gathered sums the series of one metric of m.
func gathered(t testing.TB, m *Member, name string) float64 {
	t.Helper()
	mfs, err := m.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		v := 0.0
		for _, x := range mf.GetMetric() {
			switch {
			case x.Gauge != nil:
				v += x.Gauge.GetValue()
			case x.Counter != nil:
				v += x.Counter.GetValue()
			}
		}
		return v
	}
	return 0
}

// TestNearbyOverHTTP: nearest first, the asking client left out, deleted
// clients gone, at another server than the one that received the reports.
func TestNearbyOverHTTP(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	c := dial(t, h.Member("Goloman").ClientAddr)
	for _, l := range []string{
		"IAMAT me +34.0689-118.4452 1", "IAMAT near +34.0700-118.4452 1", "IAMAT nearer +34.0690-118.4452 1",
		"IAMAT far +35.0689-118.4452 1", "IAMAT gone +34.0691-118.4452 1",
	} {
		c.send(l + "\n")
		c.line()
	}
	c.send("DELETE gone\n") // not a client command
	if got := c.line(); got != "? DELETE gone\n" {
		t.Fatalf("%q", got)
	}
	if code, body, _ := httpDo(t, nil, "DELETE", "http://"+h.Member("Goloman").HTTPAddr+"/v1/clients/gone", "", nil); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	welsh := h.Member("Welsh")
	waitFor(t, 5*time.Second, "Welsh to learn everything", func() bool {
		_, ok := welsh.Table.Get("gone")
		return welsh.Table.Len() == 5 && !ok && known(welsh, "far") != ""
	})
	code, body, _ := httpDo(t, nil, "GET", "http://"+welsh.HTTPAddr+"/v1/clients/me/nearby?radius_km=10", "", nil)
	var ans httpapi.NearbyAnswer
	if code != 200 || json.Unmarshal([]byte(body), &ans) != nil {
		t.Fatalf("%d %s", code, body)
	}
	var names []string
	for _, n := range ans.Clients {
		names = append(names, n.Client)
	}
	if strings.Join(names, " ") != "nearer near" || ans.Clients[0].DistanceM < 10 || ans.Clients[0].DistanceM > 12 {
		t.Fatalf("nearby: %s", body)
	}
	q := url.Values{"lat": {"34.0689"}, "lon": {"-118.4452"}, "radius_km": {"200"}, "limit": {"2"}}
	code, body, _ = httpDo(t, nil, "GET", "http://"+welsh.HTTPAddr+"/v1/nearby?"+q.Encode(), "", nil)
	if code != 200 || !strings.Contains(body, `"client":"me","lat":34.0689,"lon":-118.4452,"distance_m":0,`) || strings.Contains(body, "far") {
		t.Fatalf("nearby: %d %s", code, body)
	}
	for _, bad := range []string{"lat=91&lon=0&radius_km=1", "lat=0&lon=0", "lat=0&lon=0&radius_km=-1", "lat=0&lon=0&radius_km=1&limit=0"} {
		if code, body, _ := httpDo(t, nil, "GET", "http://"+welsh.HTTPAddr+"/v1/nearby?"+bad, "", nil); code != 400 {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

// TestDeletionSurvivesPartitionAndRestart: C is cut off holding a location
// of kiwi newer than A's but older than the deletion; kiwi is deleted at A.
// After the partition heals, no server has kiwi (C's record does not bring
// it back), nor after every server restarts from its data directory; an
// IAMAT newer than the deletion brings it back everywhere.
func TestDeletionSurvivesPartitionAndRestart(t *testing.T) {
	closeIdle(t)
	dataDir := t.TempDir()
	toC, err := faultproxy.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toC.Close() })
	mk := func(cAddr, bAddr string) *config.Config {
		cfg := defaultConfig(t)
		cfg.DataDir = dataDir
		cfg.Servers = []config.Server{
			{Name: "A", Addr: "127.0.0.1:0", HTTP: "127.0.0.1:0", Neighbors: []string{"B"}},
			{Name: "B", Addr: bAddr, Neighbors: []string{"C"}},
			{Name: "C", Addr: cAddr, HTTP: "127.0.0.1:0"},
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	f := func(string) places.Finder { return &fakeFinder{} }
	h1, err := Start(Options{Config: mk(toC.Addr(), "127.0.0.1:0"), Names: []string{"A", "B"}, NewFinder: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h1.Close(context.Background()) })
	toB, err := faultproxy.New(h1.Member("B").ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toB.Close() })
	h2, err := Start(Options{Config: mk("127.0.0.1:0", toB.Addr()), Names: []string{"C"}, NewFinder: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h2.Close(context.Background()) })
	toC.SetTarget(h2.Member("C").ClientAddr)
	members := func() []*Member { return []*Member{h1.Member("A"), h1.Member("B"), h2.Member("C")} }
	linkUp := func() bool { return linkOf(h1.Member("B"), "C").Up && linkOf(h2.Member("C"), "B").Up }
	waitFor(t, 5*time.Second, "the B–C link", linkUp)

	now := time.Now().Unix()
	ask(t, h1.Member("A").ClientAddr, fmt.Sprintf("IAMAT kiwi +34.0689-118.4452 %d", now-100))
	ask(t, h1.Member("A").ClientAddr, fmt.Sprintf("IAMAT kea +34.07-118.4452 %d", now-100)) // stays: restored into the index
	waitFor(t, 5*time.Second, "C to learn kiwi", func() bool { return known(h2.Member("C"), "kiwi") != "" })

	toC.SetMode(faultproxy.Cut)
	toB.SetMode(faultproxy.Cut)
	waitFor(t, 5*time.Second, "the partition", func() bool { return !linkOf(h1.Member("B"), "C").Up && !linkOf(h2.Member("C"), "B").Up })
	older := ask(t, h2.Member("C").ClientAddr, fmt.Sprintf("IAMAT kiwi +35-118 %d", now-50))
	if !strings.HasPrefix(older, "AT C ") {
		t.Fatalf("C: %q", older)
	}
	code, body, _ := httpDo(t, nil, "DELETE", "http://"+h1.Member("A").HTTPAddr+"/v1/clients/kiwi", "", nil)
	if code != 200 || !strings.Contains(body, `"tombstone":"DEL A kiwi `) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if got := ask(t, h1.Member("A").ClientAddr, "WHATSAT kiwi 10 5"); got != "? WHATSAT kiwi 10 5\n" {
		t.Fatalf("WHATSAT after the deletion: %q", got)
	}
	if code, _, _ := httpDo(t, nil, "GET", "http://"+h1.Member("A").HTTPAddr+"/v1/clients/kiwi", "", nil); code != 404 {
		t.Fatalf("GET after the deletion: %d", code)
	}
	waitFor(t, 5*time.Second, "B to forget kiwi", func() bool { return known(h1.Member("B"), "kiwi") == "" })

	toC.SetMode(faultproxy.Pass)
	toB.SetMode(faultproxy.Pass)
	waitFor(t, 5*time.Second, "the link back", linkUp)
	waitFor(t, 5*time.Second, "C to forget kiwi", func() bool { return known(h2.Member("C"), "kiwi") == "" })
	waitFor(t, 5*time.Second, "catch-up both ways", func() bool {
		return linkOf(h1.Member("B"), "C").Pos.Seq == h2.Member("C").Table.Seq() && linkOf(h2.Member("C"), "B").Pos.Seq == h1.Member("B").Table.Seq()
	})
	gone := func(when string) {
		t.Helper()
		for _, m := range members() {
			m.syncIndex()
			if l := known(m, "kiwi"); l != "" || m.Table.Tombstones() != 1 || m.Index.Len() != 1 {
				t.Fatalf("%s: %s holds %q with %d tombstones", when, m.Name, l, m.Table.Tombstones())
			}
			if _, ok := m.Index.Get("kiwi"); ok {
				t.Fatalf("%s: kiwi is still in %s's index", when, m.Name)
			}
			if got := ask(t, m.ClientAddr, "WHATSAT kiwi 10 5"); got != "? WHATSAT kiwi 10 5\n" {
				t.Fatalf("%s: WHATSAT at %s: %q", when, m.Name, got)
			}
		}
	}
	gone("after the partition heals")

	// Every server restarts from its data directory.
	for _, hm := range []struct {
		h    *Herd
		name string
	}{{h1, "A"}, {h1, "B"}, {h2, "C"}} {
		m := hm.h.Member(hm.name)
		addr := m.ClientAddr
		if err := hm.h.Stop(context.Background(), hm.name); err != nil {
			t.Fatal(err)
		}
		if err := hm.h.Restart(hm.name, addr, addr); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the links after the restarts", func() bool { return linkUp() && linkOf(h1.Member("A"), "B").Up })
	gone("after every server restarted")
	for _, m := range members() {
		m.syncIndex()
		if p, ok := m.Index.Get("kea"); !ok || p.Lat != 34.07 {
			t.Fatalf("%s did not restore kea into its index: %+v %v", m.Name, p, ok)
		}
	}
	code, body, _ = httpDo(t, nil, "GET", "http://"+h2.Member("C").HTTPAddr+"/v1/nearby?lat=34.0689&lon=-118.4452&radius_km=1", "", nil)
	if code != 200 || !strings.Contains(body, `"client":"kea"`) || strings.Contains(body, "kiwi") {
		t.Fatalf("nearby at C after the restarts: %d %s", code, body)
	}
	if got := ask(t, h2.Member("C").ClientAddr, fmt.Sprintf("IAMAT kiwi +35-118 %d", now-50)); !strings.HasPrefix(got, "? ") {
		t.Fatalf("an IAMAT older than the deletion: %q", got)
	}

	newer := ask(t, h2.Member("C").ClientAddr, fmt.Sprintf("IAMAT kiwi +36-118 %d", time.Now().Unix()+1))
	waitFor(t, 5*time.Second, "every server to have kiwi back", func() bool {
		for _, m := range members() {
			if known(m, "kiwi")+"\n" != newer || m.Table.Tombstones() != 0 {
				return false
			}
		}
		return true
	})
	code, body, _ = httpDo(t, nil, "GET", "http://"+h1.Member("A").HTTPAddr+"/v1/nearby?lat=36&lon=-118&radius_km=1", "", nil)
	if code != 200 || !strings.Contains(body, `"client":"kiwi"`) {
		t.Fatalf("nearby after the comeback: %d %s", code, body)
	}
}

// TestPointOf reads the location of an AT line whose client id holds a
// no-break space (not a field separator).
func TestPointOf(t *testing.T) {
	r, err := location.NewRecord([]byte("AT Goloman +0.000000001 a\u00a0b +34.5-118.25 1"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := pointOf(r); !ok || p.Lat != 34.5 || p.Lon != -118.25 {
		t.Fatalf("%+v %v", p, ok)
	}
}

// TestExpiryLeavesIndexAndFence: a location that expires ([locations]
// ttl) leaves the index and nearby answers, and a fence it was in sees
// exit (expired).
func TestExpiryLeavesIndexAndFence(t *testing.T) {
	closeIdle(t)
	cfg := httpConfig(t)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	cfg.Locations.TTL = config.Duration{D: 3 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, cfg, nil)
	m := h.Member(cfg.Servers[0].Name)
	s := openStream(t, m.HTTPAddr, "lat=10&lon=10&radius_km=5", "")
	now := time.Now()
	ask(t, m.ClientAddr, fmt.Sprintf("IAMAT old +10-170 %d.%09d", now.Unix()-2, now.Nanosecond()))
	ask(t, m.ClientAddr, fmt.Sprintf("IAMAT fading +10+10 %d.%09d", now.Unix()-2, now.Nanosecond()))
	if e := s.next(); e.event != "enter" || e.client(t) != "fading" {
		t.Fatalf("%+v", e)
	}
	e := s.next()
	if e.event != "exit" || e.client(t) != "fading" || !strings.Contains(e.data, `"reason":"expired"`) || !strings.Contains(e.id, ".") {
		t.Fatalf("%+v, want exit (expired) with a sub-position", e)
	}
	waitFor(t, 5*time.Second, "both to leave the index", func() bool { return m.Index.Len() == 0 })
	if code, body, _ := httpDo(t, nil, "GET", "http://"+m.HTTPAddr+"/v1/nearby?lat=10&lon=10&radius_km=20040", "", nil); code != 200 || body != "{\"clients\":[]}\n" {
		t.Fatalf("nearby after expiry: %d %s", code, body)
	}
}

// TestStopWithOpenStream: a member with an open stream stops at once.
func TestStopWithOpenStream(t *testing.T) {
	closeIdle(t)
	cfg := httpConfig(t)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Config: cfg, NewFinder: func(string) places.Finder { return &fakeFinder{} }})
	if err != nil {
		t.Fatal(err)
	}
	s := openStream(t, h.Member(cfg.Servers[0].Name).HTTPAddr, "", "")
	s.next2(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stopping with an open stream took %v", d)
	}
}
