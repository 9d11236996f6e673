package google

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herd/internal/places"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testKey looks like a real key; tests check that it never leaks into errors.
const testKey = "AIzaFAKE-test_key+0123456789"

// ucla is the WHATSAT of the course examples: 10 km, 5 results.
var ucla = places.Query{Lat: 34.068930, Lng: -118.445127, RadiusM: 10000, Bound: 5}

// newServer starts a fake API on 127.0.0.1, closed when the test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// serve answers every request with the given status and body.
func serve(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// hangingServer never answers: each handler waits for its request to be
// cancelled, or for the end of the test.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	t.Cleanup(func() { close(done) }) // runs before srv.Close
	return srv
}

// closedServerURL returns the URL of a server that is no longer listening.
func closedServerURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(bytes.Clone(got), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := bytes.TrimSuffix(readFile(t, path), []byte("\n"))
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// checkNoKey fails if err mentions the key in any form.
func checkNoKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an error")
	}
	msg := err.Error()
	for _, k := range []string{testKey, url.QueryEscape(testKey), "0123456789"} {
		if strings.Contains(msg, k) {
			t.Fatalf("error leaks the key: %q", msg)
		}
	}
}

// checkTimeout checks err is a deadline error without the key.
func checkTimeout(t *testing.T, err error) {
	t.Helper()
	checkNoKey(t, err)
	var ne interface{ Timeout() bool }
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("err = %v, want a deadline error", err)
	}
}

// providers builds each provider, by its config name, for tests run on both.
var providers = map[string]func(Options) places.Finder{
	"google":     func(o Options) places.Finder { return NewLegacy(o) },
	"google-new": func(o Options) places.Finder { return NewPlacesNew(o) },
}

func TestNoKeyAnswersWithoutNetwork(t *testing.T) {
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				t.Error("the provider called the API without a key")
			})
			r, err := mk(Options{Endpoint: srv.URL}).Nearby(t.Context(), ucla)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "REQUEST_DENIED" || r.ErrorMessage != places.ErrNoKey.Error() || len(r.Results) != 0 {
				t.Errorf("got %+v", r)
			}
			checkGolden(t, "no_key.golden", r.Render(ucla.Bound))
		})
	}
}

func TestDeadlineFromContext(t *testing.T) {
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			srv := hangingServer(t)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := mk(Options{Endpoint: srv.URL, Key: testKey}).Nearby(ctx, ucla)
			checkTimeout(t, err)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Nearby took %v after a 100ms deadline", d)
			}
		})
	}
}

func TestDeadlineFromOptions(t *testing.T) {
	for name, mk := range providers {
		for cname, client := range map[string]*http.Client{"own client": nil, "client without timeout": {}} {
			t.Run(name+"/"+cname, func(t *testing.T) {
				srv := hangingServer(t)
				f := mk(Options{Endpoint: srv.URL, Key: testKey, Client: client, Timeout: 100 * time.Millisecond})
				_, err := f.Nearby(t.Context(), ucla)
				checkTimeout(t, err)
			})
		}
	}
}

func TestCancelledContext(t *testing.T) {
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, serve(http.StatusOK, `{}`))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := mk(Options{Endpoint: srv.URL, Key: testKey}).Nearby(ctx, ucla)
			checkNoKey(t, err)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			_, err := mk(Options{Endpoint: closedServerURL(t), Key: testKey}).Nearby(t.Context(), ucla)
			checkNoKey(t, err)
		})
	}
}

// TestKeyInEndpointNotLeaked covers a key someone also put in the endpoint URL.
func TestKeyInEndpointNotLeaked(t *testing.T) {
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			endpoint := closedServerURL(t) + "/x?key=" + url.QueryEscape(testKey)
			_, err := mk(Options{Endpoint: endpoint, Key: testKey}).Nearby(t.Context(), ucla)
			checkNoKey(t, err)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	big := `{"status":"OK","results":[],"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for name, mk := range providers {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, serve(http.StatusOK, big))
			_, err := mk(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			checkNoKey(t, err)
			if !strings.Contains(err.Error(), "larger than") {
				t.Errorf("err = %v, want a size error", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	c := newClient(Options{Key: testKey}, LegacyEndpoint)
	ue := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/p?key=" + url.QueryEscape(testKey), Err: context.DeadlineExceeded}
	err := c.redact(ue)
	checkNoKey(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("redact lost the cause: %v", err)
	}
	err = c.redact(errors.New("odd: " + testKey))
	checkNoKey(t, err)
	if !strings.Contains(err.Error(), redactedKey) {
		t.Errorf("redact(%q) = %q", "odd: key", err)
	}
	if c.redact(nil) != nil {
		t.Error("redact(nil) != nil")
	}
}

func TestRadiusMetres(t *testing.T) {
	for in, want := range map[float64]string{
		10 * 1000:   "10000",
		1.1 * 1000:  "1100",
		0.1 * 1000:  "100",
		0.0005:      "0.001",
		0.5:         "0.5",
		50000:       "50000",
		12.3456789:  "12.346",
		0.001 * 1.5: "0.002",
	} {
		if got := formatCoord(radiusMetres(in)); got != want {
			t.Errorf("radius %v m sent as %s, want %s", in, got, want)
		}
	}
}
