package herd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herd/internal/places/cache"
	"herd/internal/places/google"
)

// TestWhatsatOverRateLimit: past the places rate limit, a WHATSAT that
// needs an upstream call is answered at once with OVER_QUERY_LIMIT in the
// usual framing, and Google is not called.
func TestWhatsatOverRateLimit(t *testing.T) {
	var calls atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(fakeGoogleBody))
	}))
	t.Cleanup(fake.Close)
	g := google.NewLegacy(google.Options{Endpoint: fake.URL, Key: "k", Timeout: 5 * time.Second})
	c := cache.New(g, cache.Options{Rate: 1.0 / 3600, Burst: 1}) // one call, then none for an hour
	h := startHerd(t, defaultConfig(t), c)
	addr := h.Member("Goloman").ClientAddr
	at := ask(t, addr, "IAMAT limited +34.068930-118.445127 1")
	cl := dial(t, addr)
	cl.send("WHATSAT limited 10 5\n")
	if gotAT, body := cl.whatsatReply(); gotAT != at || !strings.Contains(body, `"status" : "OK"`) {
		t.Fatalf("first WHATSAT: %q\n%s", gotAT, body)
	}
	start := time.Now()
	for _, radius := range []string{"11", "12", "13"} { // each needs its own upstream call
		cl.send("WHATSAT limited " + radius + " 5\n")
		gotAT, body := cl.whatsatReply()
		if gotAT != at || !strings.Contains(body, `"status" : "OVER_QUERY_LIMIT"`) || !strings.Contains(body, `"results" : []`) ||
			!strings.Contains(body, cache.RateLimitedMessage) {
			t.Fatalf("WHATSAT over the limit: %q\n%s", gotAT, body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("answers over the limit took %v, want at once", d)
	}
	cl.send("WHATSAT limited 10 3\n") // cached: needs no call
	if _, body := cl.whatsatReply(); !strings.Contains(body, `"status" : "OK"`) {
		t.Fatalf("cached WHATSAT:\n%s", body)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls, want 1", n)
	}
}
