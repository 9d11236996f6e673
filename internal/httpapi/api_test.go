package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/places"
	"herd/internal/protocol"
	"herd/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The tokens of the tests.
const (
	aliceToken  = "alice-secret-token-0123" // writes alice/*, reads *
	bobToken    = "bob-secret-token-012345" // writes bob/phone, reads bob/* and alice/phone
	readerToken = "reader-token-0123456789" // reads *, writes nothing
)

func testTokens() *Tokens {
	return NewTokens(map[string]Grant{
		aliceToken:  {Name: "alice", Write: []Pattern{"alice/*"}, Read: []Pattern{"*"}},
		bobToken:    {Name: "bob", Write: []Pattern{"bob/phone"}, Read: []Pattern{"bob/*", "alice/phone"}},
		readerToken: {Name: "reader", Read: []Pattern{"*"}},
	})
}

// recvTime is the fixed clock of the tests' server.
var recvTime = time.Unix(1621464828, 223372036)

type fakeFinder struct{}

func (fakeFinder) Nearby(_ context.Context, q places.Query) (*places.Response, error) {
	res, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("near %.6f,%.6f r=%g", q.Lat, q.Lng, q.RadiusM)})
	return &places.Response{Status: places.StatusOK, Results: []json.RawMessage{res, res, res}}, nil
}

// env is a server with its table, and the API in front of it.
type env struct {
	t     *testing.T
	table *location.Table
	srv   *server.Server
	ts    *httptest.Server
	reg   *prometheus.Registry
}

type envOptions struct {
	tokens   *Tokens
	maxBody  int64
	durable  func(chan<- error)
	maxCount int
}

func newEnv(t *testing.T, eo envOptions) *env {
	t.Helper()
	now := func() time.Time { return recvTime }
	lim := location.Limits{MaxClockSkew: 24 * time.Hour, MaxClients: eo.maxCount}
	table := location.NewTable(location.WithLimits(lim), location.WithClock(now))
	cfg := config.Default()
	srv := server.New(server.Options{
		Name: "Goloman", Client: cfg.Client, PlacesTimeout: time.Second, Table: table,
		Finder: fakeFinder{}, Logger: slog.New(slog.DiscardHandler), Now: now, Durable: eo.durable,
	})
	reg := prometheus.NewRegistry()
	api := New(Options{Backend: srv, Tokens: eo.tokens, MaxBodyBytes: eo.maxBody, Now: now, Registerer: reg, ServerName: "Goloman"})
	ts := httptest.NewServer(api)
	t.Cleanup(func() {
		ts.Close()
		srv.Shutdown(context.Background())
	})
	return &env{t: t, table: table, srv: srv, ts: ts, reg: reg}
}

// req is one request of a test.
type req struct {
	method, path, body string
	token              string            // Bearer token; "" for none
	basic              [2]string         // Basic user and password, when basic[1] != ""
	header             map[string]string // more headers
}

type resp struct {
	code   int
	body   string
	header http.Header
}

func (e *env) do(r req) resp {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.basic[1] != "" {
		hr.SetBasicAuth(r.basic[0], r.basic[1])
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

// snapshot lists the table's lines, sorted.
func (e *env) snapshot() string {
	var lines []string
	e.table.Range(func(r location.Record) bool { lines = append(lines, r.Line); return true })
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tcpAT is the AT line a TCP IAMAT with these fields gets from the test
// server.
func tcpAT(t *testing.T, fields string) string {
	t.Helper()
	cmd, err := protocol.Parse([]byte("IAMAT " + fields))
	if err != nil {
		t.Fatal(err)
	}
	return string(protocol.AppendAT(nil, "Goloman", recvTime, &cmd))
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

func TestPostLocation(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(req{method: "POST", path: "/v1/locations",
		body: `{"client": "kiwi.cs.ucla.edu", "lat": 34.068930, "lon": -118.445127, "time": "1621464827.959498503"}`})
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	got := decode[map[string]any](t, r.body)
	want := tcpAT(t, "kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	if got["at"] != want || want != "AT Goloman +0.263873533 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503" {
		t.Fatalf("at = %q, want %q", got["at"], want)
	}
	if got["client"] != "kiwi.cs.ucla.edu" || got["lat"] != 34.06893 || got["lon"] != -118.445127 ||
		got["time"] != "1621464827.959498503" || got["server"] != "Goloman" || got["updated"] != true {
		t.Fatalf("reply = %v", got)
	}
	if rec, ok := e.table.Get("kiwi.cs.ucla.edu"); !ok || rec.Line != want {
		t.Fatalf("table holds %q", rec.Line)
	}
	// The same report again changes nothing, like a retransmitted IAMAT.
	r = e.do(req{method: "POST", path: "/v1/locations",
		body: `{"client": "kiwi.cs.ucla.edu", "lat": 34.068930, "lon": -118.445127, "time": "1621464827.959498503"}`})
	if got := decode[map[string]any](t, r.body); r.code != 200 || got["updated"] != false || got["at"] != want {
		t.Fatalf("repeat: %d %s", r.code, r.body)
	}
	// An older report gets the newer stored line.
	r = e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "kiwi.cs.ucla.edu", "lat": 1, "lon": 2, "time": 1621464800}`})
	if got := decode[map[string]any](t, r.body); r.code != 200 || got["updated"] != false || got["at"] != want {
		t.Fatalf("older: %d %s", r.code, r.body)
	}
	// Without a time, the receive time is the client time.
	r = e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "nano", "lat": 0, "lon": -0.5}`})
	if got := decode[map[string]any](t, r.body); r.code != 200 || got["at"] != "AT Goloman +0.000000000 nano +0-0.5 1621464828.223372036" {
		t.Fatalf("no time: %d %s", r.code, r.body)
	}
	// GET reads it back, without "updated".
	r = e.do(req{method: "GET", path: "/v1/clients/kiwi.cs.ucla.edu"})
	if got := decode[map[string]any](t, r.body); r.code != 200 || got["at"] != want || got["updated"] != nil {
		t.Fatalf("GET: %d %s", r.code, r.body)
	}
}

func TestPostBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(req{method: "POST", path: "/v1/locations", body: `[
		{"client": "a/1", "lat": 10.5, "lon": 20.25, "time": "1621464800"},
		{"client": "a/2", "lat": -10.5, "lon": 179.999999, "time": "1621464801.5"}
	]`})
	if r.code != 200 {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	got := decode[[]Location](t, r.body)
	if len(got) != 2 || got[0].At != tcpAT(t, "a/1 +10.5+20.25 1621464800") || got[1].At != tcpAT(t, "a/2 -10.5+179.999999 1621464801.5") {
		t.Fatalf("batch reply = %+v", got)
	}
	if r := e.do(req{method: "POST", path: "/v1/locations", body: `[]`}); r.code != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Fatalf("empty batch: %d %s", r.code, r.body)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{maxBody: 4096})
	e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "known", "lat": 1, "lon": 2, "time": "1621464000"}`})
	before := e.snapshot()
	far := fmt.Sprint(recvTime.Add(25 * time.Hour).Unix())
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		r    req
		code int
		msg  string
	}{
		{"bad JSON", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1,`}, 400, "bad JSON"},
		{"not an object", req{method: "POST", path: "/v1/locations", body: `"hello"`}, 400, "bad JSON"},
		{"two values", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2} {}`}, 400, "more than one value"},
		{"empty body", req{method: "POST", path: "/v1/locations"}, 400, "bad JSON"},
		{"unknown field", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lng": 2}`}, 400, "unknown field"},
		{"missing client", req{method: "POST", path: "/v1/locations", body: `{"lat": 1, "lon": 2}`}, 400, `missing "client"`},
		{"missing lat", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lon": 2}`}, 400, `missing "lat"`},
		{"missing lon", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 2}`}, 400, `missing "lon"`},
		{"null lat", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": null, "lon": 2}`}, 400, `missing "lat"`},
		{"string lat", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": "1", "lon": 2}`}, 400, "must be a number"},
		{"lat over 90", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 90.000001, "lon": 2}`}, 400, "bad location"},
		{"lon under -180", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": -180.5}`}, 400, "bad location"},
		{"exponent", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1e1, "lon": 2}`}, 400, "bad location"},
		{"empty client", req{method: "POST", path: "/v1/locations", body: `{"client": "", "lat": 1, "lon": 2}`}, 400, "missing client id"},
		{"space in client", req{method: "POST", path: "/v1/locations", body: `{"client": "a b", "lat": 1, "lon": 2}`}, 400, "bad client id"},
		{"control in client", req{method: "POST", path: "/v1/locations", body: `{"client": "a\u0007", "lat": 1, "lon": 2}`}, 400, "bad client id"},
		{"client too long", req{method: "POST", path: "/v1/locations", body: `{"client": "` + long + `", "lat": 1, "lon": 2}`}, 400, "bad client id"},
		{"bad time", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "soon"}`}, 400, "bad time"},
		{"negative time", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": -5}`}, 400, "bad time"},
		{"ten fraction digits", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "1.0123456789"}`}, 400, "bad time"},
		{"far future", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "` + far + `"}`}, 400, "max_clock_skew"},
		{"far future known", req{method: "POST", path: "/v1/locations", body: `{"client": "known", "lat": 1, "lon": 2, "time": "` + far + `"}`}, 400, "max_clock_skew"},
		{"oversize", req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "x": "` + strings.Repeat("y", 5000) + `"}`}, 413, "max_body_bytes"},
		{"bad batch item", req{method: "POST", path: "/v1/locations", body: `[{"client": "b1", "lat": 1, "lon": 2}, {"client": "b2", "lat": 91, "lon": 2}]`}, 400, "item 1: bad location"},
		{"batch of non-objects", req{method: "POST", path: "/v1/locations", body: `[1, 2]`}, 400, "item 0: bad JSON"},
		{"GET unknown", req{method: "GET", path: "/v1/clients/nobody"}, 404, "no location known"},
		{"GET bad id", req{method: "GET", path: "/v1/clients/a%20b"}, 400, "bad client id"},
		{"places unknown", req{method: "GET", path: "/v1/clients/nobody/places?radius_km=10&bound=5"}, 404, "no location known"},
		{"places no radius", req{method: "GET", path: "/v1/clients/known/places?bound=5"}, 400, "radius_km and bound are required"},
		{"places radius 0", req{method: "GET", path: "/v1/clients/known/places?radius_km=0&bound=5"}, 400, "bad radius_km"},
		{"places radius 51", req{method: "GET", path: "/v1/clients/known/places?radius_km=51&bound=5"}, 400, "bad radius_km"},
		{"places bound 21", req{method: "GET", path: "/v1/clients/known/places?radius_km=5&bound=21"}, 400, "bad bound"},
		{"places bound space", req{method: "GET", path: "/v1/clients/known/places?radius_km=5&bound=" + url.QueryEscape("2 3")}, 400, "bad radius_km or bound"},
		{"osmand no id", req{method: "GET", path: "/osmand?lat=1&lon=2"}, 400, "missing id"},
		{"osmand no lat", req{method: "GET", path: "/osmand?id=o&lon=2"}, 400, "missing lat"},
		{"osmand bad lat", req{method: "GET", path: "/osmand?id=o&lat=95&lon=2"}, 400, "bad location"},
		{"osmand bad time", req{method: "GET", path: "/osmand?id=o&lat=5&lon=2&timestamp=noon"}, 400, "bad timestamp"},
		{"osmand future", req{method: "GET", path: "/osmand?id=o&lat=5&lon=2&timestamp=" + far}, 400, "max_clock_skew"},
		{"owntracks no device", req{method: "POST", path: "/owntracks", body: `{"_type":"location","lat":1,"lon":2,"tst":1621464000}`, basic: [2]string{"u", "pw"}}, 400, "X-Limit-D"},
		{"owntracks bad JSON", req{method: "POST", path: "/owntracks", body: `{"_type":`, header: map[string]string{"X-Limit-U": "u", "X-Limit-D": "d"}}, 400, "bad JSON"},
		{"owntracks no tst", req{method: "POST", path: "/owntracks", body: `{"_type":"location","lat":1,"lon":2}`, header: map[string]string{"X-Limit-U": "u", "X-Limit-D": "d"}}, 400, `missing "tst"`},
		{"owntracks bad lon", req{method: "POST", path: "/owntracks", body: `{"_type":"location","lat":1,"lon":200,"tst":1621464000}`, header: map[string]string{"X-Limit-U": "u", "X-Limit-D": "d"}}, 400, "bad location"},
		{"unknown route", req{method: "GET", path: "/v2/nothing"}, 404, "no such endpoint"},
		{"wrong method", req{method: "DELETE", path: "/osmand"}, 405, "not allowed"},
		{"GET locations", req{method: "GET", path: "/v1/locations"}, 405, "not allowed"},
		{"trailing slash", req{method: "POST", path: "/v1/locations/", body: `{"client": "a", "lat": 1, "lon": 2}`}, 404, "no such endpoint"},
		{"client path too deep", req{method: "GET", path: "/v1/clients/alice/phone"}, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.r)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			msg := decode[map[string]string](t, r.body)["error"]
			if !strings.Contains(msg, tt.msg) {
				t.Fatalf("error %q, want one containing %q", msg, tt.msg)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("table changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func TestLongReportRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Each field is valid but the IAMAT line would pass client.max_line_bytes.
	lat := "1." + strings.Repeat("0", 5000)
	r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": ` + lat + `, "lon": 2}`})
	if r.code != 400 || !strings.Contains(r.body, "max_line_bytes") || e.table.Len() != 0 {
		t.Fatalf("%d %s (table %d)", r.code, r.body, e.table.Len())
	}
}

func TestFullTable(t *testing.T) {
	e := newEnv(t, envOptions{maxCount: 1})
	if r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "1621464000"}`}); r.code != 200 {
		t.Fatal(r.code, r.body)
	}
	before := e.snapshot()
	r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "b", "lat": 1, "lon": 2, "time": "1621464000"}`})
	if r.code != 429 || !strings.Contains(r.body, "max_clients") || e.snapshot() != before {
		t.Fatalf("%d %s", r.code, r.body)
	}
	// A known client still updates.
	if r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "1621464001"}`}); r.code != 200 {
		t.Fatal(r.code, r.body)
	}
}

func TestStoreFailureIs503(t *testing.T) {
	var failing atomic.Bool
	e := newEnv(t, envOptions{durable: func(done chan<- error) {
		if failing.Load() {
			done <- errors.New("write data/Goloman/log: no space left on device")
			return
		}
		done <- nil
	}})
	if r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "1621464000"}`}); r.code != 200 {
		t.Fatal(r.code, r.body)
	}
	failing.Store(true)
	r := e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2, "time": "1621464001"}`})
	if r.code != 503 || !strings.Contains(r.body, "not acknowledged") {
		t.Fatalf("%d %s", r.code, r.body)
	}
	r = e.do(req{method: "GET", path: "/osmand?id=o&lat=1&lon=2"})
	if r.code != 503 {
		t.Fatalf("osmand: %d %s", r.code, r.body)
	}
}

func TestTokenCases(t *testing.T) {
	e := newEnv(t, envOptions{tokens: testTokens()})
	post := func(token, client string) req {
		return req{method: "POST", path: "/v1/locations", token: token,
			body: `{"client": "` + client + `", "lat": 1, "lon": 2, "time": "1621464000"}`}
	}
	if r := e.do(post(aliceToken, "alice/phone")); r.code != 200 {
		t.Fatal(r.code, r.body)
	}
	if r := e.do(post(bobToken, "bob/phone")); r.code != 200 {
		t.Fatal(r.code, r.body)
	}
	before := e.snapshot()
	owntracks := func(user, pw, device string) req {
		return req{method: "POST", path: "/owntracks", basic: [2]string{user, pw}, header: map[string]string{"X-Limit-D": device},
			body: `{"_type":"location","lat":1,"lon":2,"tst":1621464100}`}
	}
	tests := []struct {
		name string
		r    req
		code int
		msg  string
	}{
		{"no token", post("", "alice/phone"), 401, "credentials needed"},
		{"wrong token", post("not-a-token-at-all-0000", "alice/phone"), 401, "unknown token"},
		{"outside write", post(aliceToken, "bob/phone"), 403, "may not report"},
		{"reader writes", post(readerToken, "alice/phone"), 403, "may not report"},
		{"batch partly outside", req{method: "POST", path: "/v1/locations", token: aliceToken,
			body: `[{"client": "alice/tablet", "lat": 1, "lon": 2}, {"client": "bob/tablet", "lat": 1, "lon": 2}]`}, 403, "item 1: this token may not report"},
		{"GET no token", req{method: "GET", path: "/v1/clients/alice%2Fphone"}, 401, "credentials"},
		{"GET outside read", req{method: "GET", path: "/v1/clients/carol%2Fphone", token: bobToken}, 403, "may not read"},
		{"GET outside read, known", req{method: "GET", path: "/v1/clients/alice%2Ftablet", token: bobToken}, 403, "may not read"},
		{"places outside read", req{method: "GET", path: "/v1/clients/alice%2Ftablet/places?radius_km=1&bound=1", token: bobToken}, 403, "may not read"},
		{"owntracks no password", req{method: "POST", path: "/owntracks", header: map[string]string{"X-Limit-U": "alice", "X-Limit-D": "phone"},
			body: `{"_type":"location","lat":1,"lon":2,"tst":1621464100}`}, 401, "credentials"},
		{"owntracks wrong password", owntracks("alice", "wrong-password-000000", "phone"), 401, "unknown token"},
		{"owntracks outside write", owntracks("bob", bobToken, "tablet"), 403, "may not report"},
		{"owntracks other user", owntracks("alice", bobToken, "phone"), 403, "may not report"},
		{"osmand no token", req{method: "GET", path: "/osmand?id=alice%2Fphone&lat=1&lon=2"}, 401, "credentials"},
		{"osmand outside write", req{method: "GET", path: "/osmand?id=bob%2Fphone&lat=1&lon=2&token=" + aliceToken}, 403, "may not report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.r)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if msg := decode[map[string]string](t, r.body)["error"]; !strings.Contains(msg, tt.msg) {
				t.Fatalf("error %q, want one containing %q", msg, tt.msg)
			}
			if tt.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("401 without WWW-Authenticate: %v", r.header)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("table changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
	// Inside the patterns: reads and writes work.
	if r := e.do(req{method: "GET", path: "/v1/clients/alice%2Fphone", token: bobToken}); r.code != 200 {
		t.Fatalf("bob reads alice/phone: %d %s", r.code, r.body)
	}
	if r := e.do(req{method: "GET", path: "/osmand?id=alice%2Fcar&lat=1&lon=2&token=" + aliceToken}); r.code != 200 {
		t.Fatalf("osmand with a token parameter: %d %s", r.code, r.body)
	}
	if r := e.do(req{method: "GET", path: "/v1/clients/bob%2Fphone", basic: [2]string{"anyone", readerToken}}); r.code != 200 {
		t.Fatalf("Basic password as the token: %d %s", r.code, r.body)
	}
}

// ownTracksMessage is a location message as the OwnTracks booklet
// (tech/json, _type=location) lists its elements, extra ones included.
const ownTracksMessage = `{
    "_type": "location",
    "BSSID": "b0:f2:8:45:94:33",
    "SSID": "Home Wifi",
    "acc": 14,
    "alt": 73,
    "batt": 85,
    "bs": 1,
    "cog": 270,
    "conn": "w",
    "created_at": 1621464830,
    "inregions": ["Home"],
    "lat": 48.856826,
    "lon": 2.292713,
    "m": 1,
    "p": 100.981,
    "t": "u",
    "tid": "ph",
    "topic": "owntracks/alice/phone",
    "tst": 1621464827,
    "vac": 5,
    "vel": 12
}`

func TestOwnTracks(t *testing.T) {
	e := newEnv(t, envOptions{tokens: testTokens()})
	alice := req{method: "POST", path: "/owntracks", basic: [2]string{"alice", aliceToken},
		header: map[string]string{"X-Limit-U": "alice", "X-Limit-D": "phone"}, body: ownTracksMessage}
	r := e.do(alice)
	if r.code != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Fatalf("first device: %d %s", r.code, r.body)
	}
	want := tcpAT(t, "alice/phone +48.856826+2.292713 1621464827")
	if rec, ok := e.table.Get("alice/phone"); !ok || rec.Line != want {
		t.Fatalf("stored %q, want %q", rec.Line, want)
	}
	bob := req{method: "POST", path: "/owntracks", basic: [2]string{"bob", bobToken},
		header: map[string]string{"X-Limit-U": "bob", "X-Limit-D": "phone"},
		body:   `{"_type":"location","lat":48.8606,"lon":2.3376,"tst":1621464829,"tid":"bp","acc":5,"batt":40}`}
	r = e.do(bob)
	friends := decode[[]map[string]any](t, r.body)
	if r.code != 200 || len(friends) != 1 || friends[0]["_type"] != "location" || friends[0]["tid"] != "AP" ||
		friends[0]["lat"] != 48.856826 || friends[0]["lon"] != 2.292713 || friends[0]["tst"] != 1621464827.0 ||
		friends[0]["topic"] != "owntracks/alice/phone" {
		t.Fatalf("bob's friends: %d %s", r.code, r.body)
	}
	// Alice reads everyone: she gets bob back.
	alice.body = strings.Replace(ownTracksMessage, `"tst": 1621464827`, `"tst": 1621464840`, 1)
	r = e.do(alice)
	friends = decode[[]map[string]any](t, r.body)
	if r.code != 200 || len(friends) != 1 || friends[0]["topic"] != "owntracks/bob/phone" || friends[0]["tst"] != 1621464829.0 {
		t.Fatalf("alice's friends: %d %s", r.code, r.body)
	}
	// Other types and zero-length bodies: [] and nothing stored.
	before := e.snapshot()
	for _, body := range []string{"", `{"_type":"transition","event":"enter","lat":1,"lon":2,"tst":1621464900}`, `{"_type":"lwt","tst":1621464000}`, `{"_type":"card","name":"Alice"}`} {
		r := e.do(req{method: "POST", path: "/owntracks", basic: [2]string{"alice", aliceToken}, header: map[string]string{"X-Limit-D": "phone"}, body: body})
		if r.code != 200 || strings.TrimSpace(r.body) != "[]" {
			t.Fatalf("body %q: %d %s", body, r.code, r.body)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a non-location message changed the table")
	}
}

func TestOwnTracksWithoutTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(req{method: "POST", path: "/owntracks", header: map[string]string{"X-Limit-U": "ana", "X-Limit-D": "ipad"}, body: ownTracksMessage})
	if r.code != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if _, ok := e.table.Get("ana/ipad"); !ok {
		t.Fatal("not stored under X-Limit-U/X-Limit-D")
	}
}

func TestOsmAnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, method, query, form string
		wantTime                  string
	}{
		{"GET seconds", "GET", "id=dev1&lat=52.5200&lon=13.4050&timestamp=1621464800&speed=25.0&bearing=90&altitude=50&batt=85", "", "1621464800"},
		{"GET milliseconds", "GET", "id=dev2&lat=52.52&lon=-13.405&timestamp=1621464800123&hdop=1.2", "", "1621464800.123"},
		{"GET RFC 3339", "GET", "deviceid=dev3&lat=-52.52&lon=13.405&timestamp=2021-05-19T22:53:20Z", "", "1621464800"},
		{"POST seconds", "POST", "", "id=dev4&lat=1.5&lon=2.5&timestamp=1621464801", "1621464801"},
		{"POST milliseconds", "POST", "", "id=dev5&lat=1.5&lon=2.5&timestamp=1621464801999", "1621464801.999"},
		{"POST RFC 3339", "POST", "", "id=dev6&location=1.5,2.5&timestamp=2021-05-19T22:53:21.5%2B00:00", "1621464801.500000000"},
		{"POST query and form", "POST", "id=dev7", "lat=1.5&lon=2.5&timestamp=1621464802", "1621464802"},
		{"no timestamp", "GET", "id=dev8&lat=1&lon=1", "", "1621464828.223372036"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req{method: tt.method, path: "/osmand?" + tt.query, body: tt.form}
			if tt.form != "" {
				r.header = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			}
			res := e.do(r)
			if res.code != 200 {
				t.Fatalf("%d %s", res.code, res.body)
			}
			loc := decode[Location](t, res.body)
			if loc.Time != tt.wantTime || loc.Server != "Goloman" {
				t.Fatalf("reply %+v, want time %s", loc, tt.wantTime)
			}
			if rec, ok := e.table.Get(loc.Client); !ok || rec.Line != loc.At {
				t.Fatalf("table holds %q, reply says %q", rec.Line, loc.At)
			}
		})
	}
	if rec, _ := e.table.Get("dev1"); rec.Line != tcpAT(t, "dev1 +52.5200+13.4050 1621464800") {
		t.Fatalf("dev1 stored as %q", rec.Line)
	}
}

func TestPlacesBody(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "kiwi", "lat": 34.068930, "lon": -118.445127, "time": "1621464827.959498503"}`})
	r := e.do(req{method: "GET", path: "/v1/clients/kiwi/places?radius_km=10&bound=2"})
	if r.code != 200 || r.header.Get("Herd-At") != tcpAT(t, "kiwi +34.068930-118.445127 1621464827.959498503") {
		t.Fatalf("%d %v %s", r.code, r.header, r.body)
	}
	cmd, _ := protocol.Parse([]byte("WHATSAT kiwi 10 2"))
	_, want, err := e.srv.Places(context.Background(), &cmd, "test")
	if err != nil || r.body != string(want) {
		t.Fatalf("body %q, want %q (%v)", r.body, want, err)
	}
	var v struct{ Results []any }
	if json.Unmarshal([]byte(r.body), &v); len(v.Results) != 2 {
		t.Fatalf("results not cut to bound: %s", r.body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.do(req{method: "POST", path: "/v1/locations", body: `{"client": "a", "lat": 1, "lon": 2}`})
	e.do(req{method: "POST", path: "/v1/locations", body: `{`})
	e.do(req{method: "GET", path: "/nothing"})
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	durations := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["server"] != "Goloman" {
				t.Fatalf("%s without the server label: %v", mf.GetName(), l)
			}
			switch mf.GetName() {
			case "herd_http_requests_total":
				got[l["route"]+" "+l["code"]] = m.GetCounter().GetValue()
			case "herd_http_request_duration_seconds":
				durations++
			}
		}
	}
	want := map[string]float64{"POST /v1/locations 200": 1, "POST /v1/locations 400": 1, "unmatched 404": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("herd_http_requests_total = %v, want %v", got, want)
	}
	if durations < 6 {
		t.Fatalf("herd_http_request_duration_seconds has %d series, want one per route", durations)
	}
}
