package google

import (
	"bytes"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"herd/internal/places"
)

// legacySample is a real legacy Nearby Search body (see ../testdata/README.md).
const legacySample = "../testdata/legacy_kokubunji_netcafe.json"

func TestLegacyRequest(t *testing.T) {
	var got *http.Request
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		serve(http.StatusOK, `{"html_attributions":[],"results":[],"status":"ZERO_RESULTS"}`)(w, r)
	})
	tests := []struct {
		q                  places.Query
		location, radius   string
		endpointQuery, raw string
	}{
		{ucla, "34.06893,-118.445127", "10000", "", ""},
		{places.Query{Lat: -33.8670522, Lng: 151.1957362, RadiusM: 1.1 * 1000, Bound: 1}, "-33.8670522,151.1957362", "1100", "language=ja", "ja"},
		{places.Query{Lat: 0, Lng: -180, RadiusM: 0.5, Bound: 20}, "0,-180", "0.5", "", ""},
	}
	for _, tt := range tests {
		endpoint := srv.URL + "/maps/api/place/nearbysearch/json"
		if tt.endpointQuery != "" {
			endpoint += "?" + tt.endpointQuery
		}
		if _, err := NewLegacy(Options{Endpoint: endpoint, Key: testKey}).Nearby(t.Context(), tt.q); err != nil {
			t.Fatal(err)
		}
		if got.Method != http.MethodGet || got.URL.Path != "/maps/api/place/nearbysearch/json" {
			t.Errorf("request %s %s", got.Method, got.URL.Path)
		}
		want := url.Values{"location": {tt.location}, "radius": {tt.radius}, "key": {testKey}}
		if tt.raw != "" {
			want.Set("language", tt.raw)
		}
		if q := got.URL.Query(); q.Encode() != want.Encode() {
			t.Errorf("query = %s, want %s", q.Encode(), want.Encode())
		}
	}
}

// TestLegacyPassThrough serves a real Google body and checks that the
// provider's answer renders back to exactly that body.
func TestLegacyPassThrough(t *testing.T) {
	body := readFile(t, legacySample)
	srv := newServer(t, serve(http.StatusOK, string(body)))
	r, err := NewLegacy(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Render(places.MaxBound), bytes.TrimSuffix(body, []byte("\n")); !bytes.Equal(got, want) {
		t.Errorf("rendered answer differs from Google's body:\n%s", got)
	}
	checkGolden(t, "legacy_ok_bound_1.golden", r.Render(1))
}

// TestLegacyGoogleStatuses checks that Google's own non-OK answers come
// back as responses, not errors.
func TestLegacyGoogleStatuses(t *testing.T) {
	tests := []struct {
		golden, body, status, message string
	}{
		{"legacy_zero_results.golden", `{
   "html_attributions" : [],
   "results" : [],
   "status" : "ZERO_RESULTS"
}
`, "ZERO_RESULTS", ""},
		{"legacy_request_denied.golden", `{
   "error_message" : "The provided API key is invalid. ",
   "html_attributions" : [],
   "results" : [],
   "status" : "REQUEST_DENIED"
}
`, "REQUEST_DENIED", "The provided API key is invalid. "},
		{"legacy_over_query_limit.golden", `{"error_message":"You have exceeded your daily request quota for this API.","html_attributions":[],"results":[],"status":"OVER_QUERY_LIMIT"}`,
			"OVER_QUERY_LIMIT", "You have exceeded your daily request quota for this API."},
		{"legacy_invalid_request.golden", `{"html_attributions":[],"results":[],"status":"INVALID_REQUEST","error_message":"Invalid request. Key ` + testKey + ` echoed."}`,
			"INVALID_REQUEST", "Invalid request. Key REDACTED echoed."},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			srv := newServer(t, serve(http.StatusOK, tt.body))
			r, err := NewLegacy(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.status || r.ErrorMessage != tt.message || len(r.Results) != 0 {
				t.Errorf("got %+v", r)
			}
			checkGolden(t, tt.golden, r.Render(ucla.Bound))
		})
	}
}

func TestLegacyErrors(t *testing.T) {
	tests := []struct {
		name string
		code int
		body string
	}{
		{"HTTP 500", http.StatusInternalServerError, `{"status":"UNKNOWN_ERROR","results":[]}`},
		{"HTTP 403", http.StatusForbidden, `<html>Forbidden</html>`},
		{"HTTP 404", http.StatusNotFound, ``},
		{"malformed JSON", http.StatusOK, `{"html_attributions":[],"results":[`},
		{"HTML", http.StatusOK, `<!DOCTYPE html><html></html>`},
		{"empty body", http.StatusOK, ``},
		{"empty object", http.StatusOK, `{}`},
		{"null", http.StatusOK, `null`},
		{"results not objects", http.StatusOK, `{"results":[1],"status":"OK"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, serve(tt.code, tt.body))
			r, err := NewLegacy(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			if r != nil {
				t.Errorf("r = %+v, want nil", r)
			}
			checkNoKey(t, err)
		})
	}
}

func TestLegacyConcurrent(t *testing.T) {
	srv := newServer(t, serve(http.StatusOK, string(readFile(t, legacySample))))
	l := NewLegacy(Options{Endpoint: srv.URL, Key: testKey})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := l.Nearby(t.Context(), ucla)
			if err != nil || r.Status != places.StatusOK || len(r.Results) != 2 {
				t.Errorf("Nearby = %+v, %v", r, err)
			}
		})
	}
	wg.Wait()
}
