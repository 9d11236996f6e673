package herd

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herd/internal/places"
	"herd/internal/places/cache"
	"herd/internal/places/google"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeGoogleBody is a legacy Nearby Search answer laid out loosely, with
// blank lines, as a proxy might pass it on.
const fakeGoogleBody = `{
  "html_attributions": [],


  "results": [
    {"geometry": {"location": {"lat": 34.0689, "lng": -118.4452}}, "name": "Royce Hall",
     "place_id": "p1", "types": ["university", "point_of_interest", "establishment"], "vicinity": "340 Royce Dr, Los Angeles"},

    {"name": "Powell Library", "place_id": "p2", "rating": 4.8, "vicinity": "10740 Dickson Plaza\n\nLos Angeles"},
    {"name": "Ackerman Union", "place_id": "p3"}
  ],
  "status": "OK"
}


`

func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("reply differs from %s:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// whatsatVia starts a herd whose places come from a fake Google endpoint
// and returns the raw bytes of one WHATSAT reply, with the AT line replaced
// by "<AT line>" after checking it.
func whatsatVia(t *testing.T, handler http.HandlerFunc, timeout time.Duration, line string) string {
	t.Helper()
	fake := httptest.NewServer(handler)
	t.Cleanup(fake.Close)
	g := google.NewLegacy(google.Options{Endpoint: fake.URL + "/maps/api/place/nearbysearch/json", Key: "test-key", Timeout: timeout})
	h := startHerd(t, defaultConfig(t), g)
	at := ask(t, h.Member("Goloman").ClientAddr, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	welsh := h.Member("Welsh")
	waitFor(t, 5*time.Second, "Welsh to learn kiwi", func() bool { return known(welsh, "kiwi.cs.ucla.edu")+"\n" == at })
	c := dial(t, welsh.ClientAddr)
	c.send(line + "\n")
	gotAT, body := c.whatsatReply()
	if gotAT != at {
		t.Fatalf("AT line %q, want %q", gotAT, at)
	}
	return "<AT line>\n" + body + "\n"
}

func TestWhatsatGolden(t *testing.T) {
	var gotQuery string
	reply := whatsatVia(t, func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		w.Write([]byte(fakeGoogleBody))
	}, 5*time.Second, "WHATSAT kiwi.cs.ucla.edu 10 2")
	if !strings.Contains(gotQuery, "location=34.06893%2C-118.445127") || !strings.Contains(gotQuery, "radius=10000") || !strings.Contains(gotQuery, "key=test-key") {
		t.Errorf("request query %q", gotQuery)
	}
	if strings.Contains(reply[:len(reply)-2], "\n\n") {
		t.Errorf("a run of newlines survived inside the reply:\n%s", reply)
	}
	golden(t, "whatsat_google.golden", reply)
}

func TestWhatsatGoogleFailureKeepsFraming(t *testing.T) {
	reply := whatsatVia(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}, 5*time.Second, "WHATSAT kiwi.cs.ucla.edu 10 2")
	golden(t, "whatsat_http_error.golden", reply)

	reply = whatsatVia(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"error_message": "You have exceeded your daily request quota for this API.", "html_attributions": [], "results": [], "status": "OVER_QUERY_LIMIT"}`))
	}, 5*time.Second, "WHATSAT kiwi.cs.ucla.edu 10 2")
	golden(t, "whatsat_quota.golden", reply)
}

func TestWhatsatGoogleTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	reply := whatsatVia(t, func(w http.ResponseWriter, r *http.Request) {
		select { // never answers in time
		case <-r.Context().Done():
		case <-release:
		}
	}, 200*time.Millisecond, "WHATSAT kiwi.cs.ucla.edu 10 2")
	if !strings.Contains(reply, `"status" : "UNKNOWN_ERROR"`) || !strings.Contains(reply, `"error_message" : "places service failed:`) ||
		!strings.Contains(reply, `"results" : []`) || strings.Contains(reply, "test-key") {
		t.Fatalf("timeout reply:\n%s", reply)
	}
}

var _ places.Finder = (*google.Legacy)(nil)

// TestConcurrentWhatsatsShareOneGoogleCall: identical WHATSATs from many
// clients at once cost one upstream call, and later ones none (cache).
func TestConcurrentWhatsatsShareOneGoogleCall(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte(fakeGoogleBody))
	}))
	t.Cleanup(fake.Close)
	g := google.NewLegacy(google.Options{Endpoint: fake.URL, Key: "k", Timeout: 5 * time.Second})
	c := cache.New(g, cache.Options{})
	h := startHerd(t, defaultConfig(t), c)
	addr := h.Member("Goloman").ClientAddr
	ask(t, addr, "IAMAT cached +34.068930-118.445127 1")
	const n = 20
	conns := make([]*client, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].send(fmt.Sprintf("WHATSAT cached 10 %d\n", i%5+1))
	}
	waitFor(t, 5*time.Second, "every WHATSAT to wait on the one upstream call", func() bool {
		return c.Stats().Misses == n
	})
	close(release)
	for i, cc := range conns {
		_, body := cc.whatsatReply()
		if want := i%5 + 1; strings.Count(body, `"place_id"`) != min(want, 3) {
			t.Fatalf("reply %d has %d places, want %d:\n%s", i, strings.Count(body, `"place_id"`), min(want, 3), body)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d upstream calls for %d identical lookups, want 1", got, n)
	}
	later := dial(t, addr)
	later.send("WHATSAT cached 10 2\n")
	later.whatsatReply()
	if got := calls.Load(); got != 1 {
		t.Fatalf("a cached lookup called upstream again (%d calls)", got)
	}
}
