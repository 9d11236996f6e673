package google

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"herd/internal/places"
)

// TestRedirectToAnotherHostRefused: a redirect away from the configured
// endpoint's host is not followed, so the key (query or header) never
// reaches that host; a redirect on the same host is followed.
func TestRedirectToAnotherHostRefused(t *testing.T) {
	var elsewhere atomic.Int64
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		serve(200, `{"results":[],"status":"ZERO_RESULTS"}`)(w, r)
	})
	answer := map[string]string{"legacy": `{"results":[],"status":"ZERO_RESULTS"}`, "new": `{}`}
	providers := map[string]func(Options) places.Finder{
		"legacy": func(o Options) places.Finder { return NewLegacy(o) },
		"new":    func(o Options) places.Finder { return NewPlacesNew(o) },
	}
	passed := &http.Client{}
	for name, newFinder := range providers {
		for _, client := range []*http.Client{nil, passed} { // our own client, and one the caller passes
			t.Run(name, func(t *testing.T) {
				var home atomic.Int64
				srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
					switch r.URL.Path {
					case "/away":
						http.Redirect(w, r, other.URL+"/steal?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
					case "/moved":
						http.Redirect(w, r, "/here?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
					default:
						home.Add(1)
						serve(200, answer[name])(w, r)
					}
				})
				f := newFinder(Options{Endpoint: srv.URL + "/away", Key: testKey, Client: client})
				_, err := f.Nearby(context.Background(), ucla)
				if err == nil {
					t.Fatal("a redirect to another host was followed")
				}
				if strings.Contains(err.Error(), testKey) {
					t.Fatalf("error leaks the key: %v", err)
				}
				if n := elsewhere.Load(); n != 0 {
					t.Fatalf("the other host got %d requests", n)
				}
				f = newFinder(Options{Endpoint: srv.URL + "/moved", Key: testKey, Client: client})
				resp, err := f.Nearby(context.Background(), ucla)
				if err != nil || resp.Status != places.StatusZeroResults || home.Load() != 1 {
					t.Fatalf("same-host redirect: %v %+v, %d requests at home", err, resp, home.Load())
				}
			})
		}
	}
	if passed.CheckRedirect != nil {
		t.Fatal("the caller's client was changed")
	}
}
