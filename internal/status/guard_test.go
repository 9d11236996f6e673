package status

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// request serves one request with headers set by hdr.
func request(h http.Handler, path string, hdr func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	if hdr != nil {
		hdr(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestTokenGuardsLocationData(t *testing.T) {
	h := Handler(Options{State: fullState, Token: "s3cret-token"})
	basic := func(pw string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth("anyone", pw) } }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, path := range []string{"/", "/api/state", "/app.js"} {
		for name, tt := range map[string]struct {
			hdr  func(*http.Request)
			want int
		}{
			"none":         {nil, http.StatusUnauthorized},
			"wrong basic":  {basic("nope"), http.StatusUnauthorized},
			"wrong bearer": {bearer("s3cret-tokenX"), http.StatusUnauthorized},
			"basic":        {basic("s3cret-token"), http.StatusOK},
			"bearer":       {bearer("s3cret-token"), http.StatusOK},
		} {
			rec := request(h, path, tt.hdr)
			if rec.Code != tt.want {
				t.Errorf("%s %s: status %d, want %d", path, name, rec.Code, tt.want)
			}
			if rec.Code == http.StatusUnauthorized {
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s %s: no Basic challenge", path, name)
				}
				if strings.Contains(rec.Body.String(), "Goloman") {
					t.Errorf("%s %s: refused answer shows state: %s", path, name, rec.Body)
				}
			}
		}
	}
	// /metrics and /healthz stay open.
	for _, path := range []string{"/healthz", "/metrics"} {
		if rec := request(Handler(Options{State: fullState, Token: "t", Metrics: http.NotFoundHandler()}), path, nil); rec.Code == http.StatusUnauthorized {
			t.Errorf("%s needs the token", path)
		}
	}
}

func TestClosedListenerRefusesLocationData(t *testing.T) {
	h := Handler(Options{State: fullState, Closed: true})
	for _, path := range []string{"/", "/api/state", "/events"} {
		rec := request(h, path, nil)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "token_file") {
			t.Errorf("%s: %d %q, want 403 saying how to open it", path, rec.Code, rec.Body)
		}
	}
	if rec := request(h, "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("/healthz: %d", rec.Code)
	}
}

func TestOnlyHerdOriginsReadState(t *testing.T) {
	h := Handler(Options{State: fullState, AllowOrigin: func(o string) bool { return o == "http://127.0.0.1:13001" }})
	for origin, want := range map[string]string{
		"http://127.0.0.1:13001": "http://127.0.0.1:13001",
		"https://evil.example":   "",
		"null":                   "",
	} {
		rec := request(h, "/api/state", func(r *http.Request) { r.Header.Set("Origin", origin) })
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("Origin %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}

func TestHealthzReportsFailure(t *testing.T) {
	var err error
	h := Handler(Options{State: fullState, Health: func() error { return err }})
	if rec := request(h, "/healthz", nil); rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("healthy: %d %q", rec.Code, rec.Body)
	}
	err = errors.New("store: disk full")
	if rec := request(h, "/healthz", nil); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "disk full") {
		t.Fatalf("failing: %d %q", rec.Code, rec.Body)
	}
}
