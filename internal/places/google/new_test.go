package google

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"herd/internal/places"
)

// rpcErrorBody is an error as Places API (New) sends it.
func rpcErrorBody(code int, status, message string) string {
	b, _ := json.MarshalIndent(map[string]any{"error": map[string]any{
		"code": code, "message": message, "status": status,
		"details": []any{map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "API_KEY_INVALID", "domain": "googleapis.com",
			"metadata": map[string]string{"service": "places.googleapis.com"},
		}},
	}}, "", "  ")
	return string(b)
}

func TestNewRequest(t *testing.T) {
	var (
		got  *http.Request
		body []byte
	)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		body, _ = io.ReadAll(r.Body)
		serve(http.StatusOK, `{}`)(w, r)
	})
	tests := []struct {
		q    places.Query
		want string
	}{
		{ucla, `{"maxResultCount":5,"locationRestriction":{"circle":{"center":{"latitude":34.06893,"longitude":-118.445127},"radius":10000}}}`},
		{places.Query{Lat: -90, Lng: 180, RadiusM: 1.1 * 1000, Bound: 20}, `{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":-90,"longitude":180},"radius":1100}}}`},
		{places.Query{Lat: 1.5, Lng: 0, RadiusM: 0.25, Bound: 1}, `{"maxResultCount":1,"locationRestriction":{"circle":{"center":{"latitude":1.5,"longitude":0},"radius":0.25}}}`},
		{places.Query{Lat: 1, Lng: 2, RadiusM: 3, Bound: 0}, `{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":1,"longitude":2},"radius":3}}}`},
		{places.Query{Lat: 1, Lng: 2, RadiusM: 3, Bound: 21}, `{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":1,"longitude":2},"radius":3}}}`},
	}
	for _, tt := range tests {
		if _, err := NewPlacesNew(Options{Endpoint: srv.URL + "/v1/places:searchNearby", Key: testKey}).Nearby(t.Context(), tt.q); err != nil {
			t.Fatal(err)
		}
		if got.Method != http.MethodPost || got.URL.Path != "/v1/places:searchNearby" || got.URL.RawQuery != "" {
			t.Errorf("request %s %s", got.Method, got.URL)
		}
		for h, want := range map[string]string{
			"Content-Type":     "application/json",
			"X-Goog-Api-Key":   testKey,
			"X-Goog-FieldMask": FieldMask,
		} {
			if v := got.Header.Get(h); v != want {
				t.Errorf("header %s = %q, want %q", h, v, want)
			}
		}
		if string(body) != tt.want {
			t.Errorf("body = %s\nwant   %s", body, tt.want)
		}
	}
}

// TestFieldMaskMatchesMapping checks that the field mask names exactly the
// Place fields the mapping reads.
func TestFieldMaskMatchesMapping(t *testing.T) {
	var mapped []string
	typ := reflect.TypeFor[newPlace]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		mapped = append(mapped, "places."+name)
	}
	mask := strings.Split(FieldMask, ",")
	slices.Sort(mapped)
	slices.Sort(mask)
	if !slices.Equal(mask, mapped) {
		t.Errorf("FieldMask %v\nmapped    %v", mask, mapped)
	}
}

func TestNewGolden(t *testing.T) {
	for _, name := range []string{"new_lebrazier", "new_sparse"} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, serve(http.StatusOK, string(readFile(t, "testdata/"+name+".json"))))
			r, err := NewPlacesNew(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != places.StatusOK || r.ErrorMessage != "" {
				t.Errorf("status %q, message %q", r.Status, r.ErrorMessage)
			}
			out := r.Render(0)
			checkGolden(t, name+".golden", out)
			// The mapped answer must read back as a legacy response.
			back, err := places.Parse(out)
			if err != nil || len(back.Results) != len(r.Results) {
				t.Errorf("Parse(Render) = %v, %v", back, err)
			}
		})
	}
}

func TestNewZeroResults(t *testing.T) {
	for _, body := range []string{`{}`, "{\n}\n", `{"places":[]}`, `{"places":null}`} {
		srv := newServer(t, serve(http.StatusOK, body))
		r, err := NewPlacesNew(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if r.Status != places.StatusZeroResults || len(r.Results) != 0 || r.ErrorMessage != "" {
			t.Errorf("%s: got %+v", body, r)
		}
		checkGolden(t, "new_zero_results.golden", r.Render(ucla.Bound))
	}
}

func TestNewGoogleErrors(t *testing.T) {
	tests := []struct {
		code                 int
		rpcStatus, legacy    string
		message, wantMessage string
	}{
		{400, "INVALID_ARGUMENT", "INVALID_REQUEST", "API key not valid. Please pass a valid API key.", ""},
		{400, "INVALID_ARGUMENT", "INVALID_REQUEST", "Invalid radius: must be between 0.0 and 50000.0, inclusive.", ""},
		{403, "PERMISSION_DENIED", "REQUEST_DENIED", "Places API (New) has not been used in project 1 before or it is disabled.", ""},
		{401, "UNAUTHENTICATED", "REQUEST_DENIED", "Request is missing required authentication credential.", ""},
		{429, "RESOURCE_EXHAUSTED", "OVER_QUERY_LIMIT", "Quota exceeded for quota metric 'SearchNearby requests'.", ""},
		{404, "NOT_FOUND", "UNKNOWN_ERROR", "Method not found.", ""},
		{400, "FAILED_PRECONDITION", "UNKNOWN_ERROR", "key " + testKey, "key REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.rpcStatus, func(t *testing.T) {
			srv := newServer(t, serve(tt.code, rpcErrorBody(tt.code, tt.rpcStatus, tt.message)))
			r, err := NewPlacesNew(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantMessage
			if want == "" {
				want = tt.message
			}
			if r.Status != tt.legacy || r.ErrorMessage != want || len(r.Results) != 0 {
				t.Errorf("got %+v, want status %s message %q", r, tt.legacy, want)
			}
			if tt.rpcStatus == "INVALID_ARGUMENT" && strings.HasPrefix(tt.message, "API key") {
				checkGolden(t, "new_invalid_argument.golden", r.Render(ucla.Bound))
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		code int
		body string
	}{
		{"HTTP 500", http.StatusInternalServerError, `Internal error`},
		{"HTTP 500 with Google error", http.StatusInternalServerError, rpcErrorBody(500, "INTERNAL", "Internal error encountered.")},
		{"HTTP 503 with Google error", http.StatusServiceUnavailable, rpcErrorBody(503, "UNAVAILABLE", "The service is currently unavailable.")},
		{"HTTP 403 without Google error", http.StatusForbidden, `<html>Forbidden</html>`},
		{"HTTP 400 with empty error", http.StatusBadRequest, `{"error":{}}`},
		{"HTTP 302", http.StatusFound, ``},
		{"malformed JSON", http.StatusOK, `{"places":[{"id":"x",`},
		{"wrong types", http.StatusOK, `{"places":[{"id":7}]}`},
		{"bad number", http.StatusOK, `{"places":[{"rating":"high"}]}`},
		{"array", http.StatusOK, `[]`},
		{"null", http.StatusOK, `null`},
		{"empty body", http.StatusOK, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, serve(tt.code, tt.body))
			r, err := NewPlacesNew(Options{Endpoint: srv.URL, Key: testKey}).Nearby(t.Context(), ucla)
			if r != nil {
				t.Errorf("r = %+v, want nil", r)
			}
			checkNoKey(t, err)
		})
	}
}

func TestAuthorAttributionHTML(t *testing.T) {
	for a, want := range map[authorAttribution]string{
		{"A Google User", "https://maps.google.com/maps/contrib/1"}: `<a href="https://maps.google.com/maps/contrib/1">A Google User</a>`,
		{"Fox & Firkin <pub>", "https://x/?a=1&b=\"2\""}:            `<a href="https://x/?a=1&amp;b=&quot;2&quot;">Fox &amp; Firkin &lt;pub&gt;</a>`,
		{"McDonald's", ""}: `McDonald's`,
	} {
		if got := a.html(); got != want {
			t.Errorf("html(%+v) = %s, want %s", a, got, want)
		}
	}
}
