package status

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var started = time.Date(2026, 5, 19, 12, 0, 0, 0, time.UTC)

// fullState is a State with every field set.
func fullState() State {
	return State{
		Server:   "Goloman",
		Addr:     "127.0.0.1:12000",
		PeerAddr: "127.0.0.1:13000",
		Started:  started,
		Clients:  3,
		Counters: map[string]float64{"iamat": 7, "whatsat": 2, "conns_open": 1},
		Links: []Link{
			{Peer: "Hands", Up: true, Queued: 1, Reconnects: 2, Dropped: 3, SyncRecords: 4},
			{Peer: "Holiday"},
		},
		Recent: []Update{{
			Time:   started.Add(time.Second),
			Client: "kiwi.cs.ucla.edu",
			Line:   "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
			From:   FromClient,
		}},
		Herd: []Node{
			{Name: "Goloman", Addr: "127.0.0.1:12000", Metrics: "127.0.0.1:9000", Neighbors: []string{"Hands", "Holiday"}},
			{Name: "Hands", Addr: "127.0.0.1:12001", Metrics: "127.0.0.1:9001", Neighbors: []string{"Goloman"}},
		},
	}
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestAPIState(t *testing.T) {
	h := Handler(Options{State: fullState})
	rec := get(t, h, "GET", "/api/state")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":                "application/json",
		"Access-Control-Allow-Origin": "",
		"Cache-Control":               "no-store",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	var got State
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, rec.Body)
	}
	if !reflect.DeepEqual(got, fullState()) {
		t.Errorf("decoded state differs:\n got %+v\nwant %+v", got, fullState())
	}

	// The page reads these names; renaming one breaks it.
	var shape map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &shape); err != nil {
		t.Fatal(err)
	}
	wantKeys := map[string][]string{
		"":         {"server", "addr", "peerAddr", "started", "clients", "counters", "links", "recent", "herd"},
		"links":    {"peer", "up", "queued", "reconnects", "dropped", "syncRecords"},
		"recent":   {"time", "client", "line", "from"},
		"herd":     {"name", "addr", "metrics", "neighbors"},
		"counters": {"iamat", "whatsat", "conns_open"},
	}
	for field, keys := range wantKeys {
		obj := shape
		if field != "" {
			switch v := shape[field].(type) {
			case []any:
				obj = v[0].(map[string]any)
			case map[string]any:
				obj = v
			}
		}
		if len(obj) != len(keys) {
			t.Errorf("%q has %d keys, want %d: %v", field, len(obj), len(keys), obj)
		}
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%q lacks key %q: %v", field, k, obj)
			}
		}
	}
	if s := shape["started"]; s != "2026-05-19T12:00:00Z" {
		t.Errorf("started = %v, want RFC 3339", s)
	}
}

func TestAPIStateEmptyAndNonFinite(t *testing.T) {
	h := Handler(Options{State: func() State {
		return State{
			Server:   "Welsh",
			Counters: map[string]float64{"nan": math.NaN(), "inf": math.Inf(1), "ok": 1.5},
			Herd:     []Node{{Name: "Welsh"}},
		}
	}})
	rec := get(t, h, "GET", "/api/state")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{`"counters":{"ok":1.5}`, `"links":[]`, `"recent":[]`, `"neighbors":[]`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "null") {
		t.Errorf("body has null:\n%s", body)
	}
}

func TestEndpoints(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "herd_up 1\n")
	})
	tests := map[string]struct {
		metrics      http.Handler
		method, path string
		code         int
		ctype, body  string // body: a substring
	}{
		"page":            {method: "GET", path: "/", code: 200, ctype: "text/html; charset=utf-8", body: `id="graph"`},
		"page script":     {method: "GET", path: "/app.js", code: 200, ctype: "text/javascript; charset=utf-8", body: "EventSource"},
		"page style":      {method: "GET", path: "/style.css", code: 200, ctype: "text/css; charset=utf-8", body: "--up"},
		"page head":       {method: "HEAD", path: "/", code: 200, ctype: "text/html; charset=utf-8"},
		"unknown path":    {method: "GET", path: "/nope", code: 404},
		"healthz":         {method: "GET", path: "/healthz", code: 200, ctype: "text/plain; charset=utf-8", body: "ok"},
		"healthz head":    {method: "HEAD", path: "/healthz", code: 200},
		"metrics nil":     {method: "GET", path: "/metrics", code: 404},
		"metrics":         {metrics: metrics, method: "GET", path: "/metrics", code: 200, body: "herd_up 1"},
		"post state":      {method: "POST", path: "/api/state", code: 405},
		"post page":       {method: "POST", path: "/", code: 405},
		"metrics subpath": {metrics: metrics, method: "GET", path: "/metrics/x", code: 404},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			rec := get(t, Handler(Options{State: fullState, Metrics: tt.metrics}), tt.method, tt.path)
			if rec.Code != tt.code {
				t.Fatalf("%s %s: status = %d, want %d", tt.method, tt.path, rec.Code, tt.code)
			}
			if tt.ctype != "" {
				if got := rec.Header().Get("Content-Type"); got != tt.ctype {
					t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
				}
			}
			if !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("body lacks %q:\n%.300s", tt.body, rec.Body)
			}
		})
	}
	if body := get(t, Handler(Options{State: fullState}), "GET", "/healthz").Body.String(); body != "ok\n" {
		t.Errorf("healthz body = %q, want \"ok\\n\"", body)
	}
	if csp := get(t, Handler(Options{State: fullState}), "GET", "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src *") {
		t.Errorf("page CSP = %q, want connect-src * so the page may poll other servers", csp)
	}
}

// streamWriter is an http.ResponseWriter and flusher for /events that hands
// each flushed event to a channel. It is safe for use by the handler's
// goroutine and the test's.
type streamWriter struct {
	hdr    http.Header // written by the handler before WriteHeader
	events chan string // one element per complete event, "event: ...\ndata: ..."

	mu      sync.Mutex   // guards buf and code
	buf     bytes.Buffer // written, not yet flushed
	code    int
	flushes atomic.Int32
}

func newStreamWriter() *streamWriter {
	return &streamWriter{hdr: http.Header{}, events: make(chan string, 64)}
}

func (w *streamWriter) Header() http.Header { return w.hdr }

func (w *streamWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.code = code
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.Write(p)
}

func (w *streamWriter) Flush() {
	w.flushes.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		ev, rest, ok := strings.Cut(w.buf.String(), "\n\n")
		if !ok {
			return
		}
		w.buf.Reset()
		w.buf.WriteString(rest)
		select {
		case w.events <- ev:
		default:
			panic("streamWriter: too many unread events")
		}
	}
}

// eventState returns the State of a "state" event.
func eventState(t *testing.T, ev string) State {
	t.Helper()
	var data string
	var named bool
	for line := range strings.SplitSeq(ev, "\n") {
		switch {
		case line == "event: state":
			named = true
		case strings.HasPrefix(line, "data: "):
			if data != "" {
				t.Fatalf("event has several data lines:\n%s", ev)
			}
			data = strings.TrimPrefix(line, "data: ")
		case line == "retry: 2000":
		default:
			t.Fatalf("unexpected event line %q in\n%s", line, ev)
		}
	}
	if !named {
		t.Fatalf("event is not named state:\n%s", ev)
	}
	var s State
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		t.Fatalf("event data: %v\n%s", err, ev)
	}
	return s
}

func TestEventsStopWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newStreamWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Handler(Options{State: fullState}).ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/events", nil))
	}()

	select {
	case ev := <-w.events:
		if s := eventState(t, ev); s.Server != "Goloman" || len(s.Recent) != 1 {
			t.Errorf("first event state = %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	if got := w.hdr.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", got)
	}
	if got := w.hdr.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin = %q, want none: the stream is for the page's own origin", got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after its request's context ended")
	}
}

// TestEventsEverySecond checks the cadence of /events on synctest's clock.
func TestEventsEverySecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		src := func() State {
			s := fullState()
			s.Clients = int(calls.Add(1))
			return s
		}
		ctx, cancel := context.WithCancel(t.Context())
		w := newStreamWriter()
		done := make(chan struct{})
		go func() {
			defer close(done)
			Handler(Options{State: src}).ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/events", nil))
		}()

		start := time.Now()
		for want := 1; want <= 3; want++ {
			synctest.Wait()
			if got := len(w.events); got != 1 {
				t.Fatalf("at %v: %d events waiting, want 1", time.Since(start), got)
			}
			if s := eventState(t, <-w.events); s.Clients != want {
				t.Fatalf("event %d carries state %d", want, s.Clients)
			}
			time.Sleep(eventInterval - time.Nanosecond)
			synctest.Wait()
			if got := len(w.events); got != 0 {
				t.Fatalf("event %d came early, at %v", want+1, time.Since(start))
			}
			time.Sleep(time.Nanosecond)
		}

		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("handler still running after its request's context ended")
		}
		if n := w.flushes.Load(); n != 4 {
			t.Errorf("%d flushes, want 4 (one per event)", n)
		}
	})
}

// TestEventsOverHTTP reads /events through a real server and client.
func TestEventsOverHTTP(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{State: fullState}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var ev strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && sc.Text() != "" {
		ev.WriteString(sc.Text() + "\n")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if s := eventState(t, strings.TrimSuffix(ev.String(), "\n")); s.Server != "Goloman" {
		t.Errorf("state server = %q", s.Server)
	}

	cancel()
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("server Close blocked: /events did not end with its request")
	}
}

func TestEventsHead(t *testing.T) {
	rec := get(t, Handler(Options{State: fullState}), "HEAD", "/events")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /events: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
