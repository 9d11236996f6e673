package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// realSamples are Nearby Search bodies captured from Google (see testdata/README.md).
var realSamples = []string{
	"legacy_kokubunji_netcafe.json",
	"legacy_greenfield_bank.json",
	"legacy_greenfield_supermarket.json",
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
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
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if want := bytes.TrimSuffix(want, []byte("\n")); !bytes.Equal(got, want) {
		t.Errorf("Render differs from %s:\n%s", path, firstDiff(got, want))
	}
}

// firstDiff describes where two texts first differ, line by line.
func firstDiff(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(no difference)"
}

// TestRenderReproducesGoogle parses real Google responses and checks that
// rendering them gives back Google's text byte for byte.
func TestRenderReproducesGoogle(t *testing.T) {
	for _, name := range realSamples {
		t.Run(name, func(t *testing.T) {
			body := readTestdata(t, name)
			r, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Render(0)
			want := bytes.TrimSuffix(body, []byte("\n"))
			if !bytes.Equal(got, want) {
				t.Errorf("Render(Parse(sample)) differs from the sample:\n%s", firstDiff(got, want))
			}
			// A bound at or above the number of results changes nothing.
			if again := r.Render(len(r.Results)); !bytes.Equal(again, got) {
				t.Error("Render(len(results)) differs from Render(0)")
			}
		})
	}
}

func TestRenderGolden(t *testing.T) {
	kokubunji, err := Parse(readTestdata(t, "legacy_kokubunji_netcafe.json"))
	if err != nil {
		t.Fatal(err)
	}
	bank, err := Parse(readTestdata(t, "legacy_greenfield_bank.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		golden string
		r      *Response
		bound  int
	}{
		{"cut_bound_1.golden", kokubunji, 1},
		{"cut_bound_2.golden", bank, 2},
		{"error_unknown.golden", ErrorResponse("", "places provider timed out after 10s"), 5},
		{"error_google.golden", ErrorResponse("REQUEST_DENIED", "The provided API key is invalid. "), 0},
		{"zero_results.golden", &Response{Status: StatusZeroResults}, 5},
		{"newlines.golden", &Response{
			Status: StatusOK,
			Results: []json.RawMessage{json.RawMessage(`{
				"name" : "two\n\nlines\n",
				"types" : [],
				"opening_hours" : {},
				"vicinity" : "a\r\nb\tc \"quoted\" <b>&amp;</b> \u2028 \/ é \u00e9 \ud83d\ude00 \u0001"
			}`)},
		}, 0},
		{"extra_members.golden", &Response{
			Status:           StatusOK,
			HTMLAttributions: []json.RawMessage{json.RawMessage(`"Data © GeoNames (CC BY 4.0)"`)},
			NextPageToken:    "AW30NDz",
			Results:          []json.RawMessage{json.RawMessage(`{"name":"x","geometry":{"location":{"lat":0,"lng":-1.5e-7}}}`)},
			Extra: map[string]json.RawMessage{
				"debug_log":    json.RawMessage(`{"line":[]}`),
				"logging_info": json.RawMessage(`{"experiment_id":[],"query_geographic_location":"AU"}`),
				"zzz":          json.RawMessage(`[1,2,[3]]`),
				"status":       json.RawMessage(`"ignored: the typed field wins"`),
			},
		}, 0},
		{"long_scalar_arrays.golden", &Response{
			Status: StatusOK,
			Results: []json.RawMessage{json.RawMessage(`{
				"fits" : ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
				"too_long" : ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
				"empties" : [{}, [], null, true, 0],
				"nested" : [[1], {"a": 1}],
				"many" : [1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5]
			}`)},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := tt.r.Render(tt.bound)
			checkRenderInvariants(t, got)
			checkGolden(t, tt.golden, got)
		})
	}
}

// checkRenderInvariants checks what every Render output must satisfy.
func checkRenderInvariants(t *testing.T, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("Render output is not valid JSON:\n%s", out)
	}
	if bytes.Contains(out, []byte("\n\n")) || bytes.HasSuffix(out, []byte("\n")) {
		t.Fatalf("Render output has a blank line or a trailing newline:\n%q", out)
	}
}

func TestRenderErrorResponseText(t *testing.T) {
	got := string(ErrorResponse("", "boom").Render(0))
	want := "{\n" +
		`   "error_message" : "boom",` + "\n" +
		`   "html_attributions" : [],` + "\n" +
		`   "results" : [],` + "\n" +
		`   "status" : "UNKNOWN_ERROR"` + "\n" +
		"}"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderBound(t *testing.T) {
	r, err := Parse(readTestdata(t, "legacy_greenfield_bank.json"))
	if err != nil {
		t.Fatal(err)
	}
	for bound, want := range map[int]int{-1: 3, 0: 3, 1: 1, 2: 2, 3: 3, 20: 3} {
		var back struct{ Results []json.RawMessage }
		if err := json.Unmarshal(r.Render(bound), &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Results) != want {
			t.Errorf("Render(%d) has %d results, want %d", bound, len(back.Results), want)
		}
	}
	if len(r.Results) != 3 {
		t.Error("Render changed r.Results")
	}
}

func TestRenderInvalidRawFallsBack(t *testing.T) {
	for name, r := range map[string]*Response{
		"bad result":    {Status: StatusOK, Results: []json.RawMessage{json.RawMessage(`{"a":`)}},
		"empty result":  {Status: StatusOK, Results: []json.RawMessage{nil}},
		"bad extra":     {Status: StatusOK, Extra: map[string]json.RawMessage{"x": json.RawMessage(`tru`)}},
		"trailing junk": {Status: StatusOK, HTMLAttributions: []json.RawMessage{json.RawMessage(`"a" "b"`)}},
	} {
		t.Run(name, func(t *testing.T) {
			out := r.Render(0)
			checkRenderInvariants(t, out)
			back, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if back.Status != StatusUnknownError || back.ErrorMessage == "" || len(back.Results) != 0 {
				t.Errorf("fallback = %+v, want an UNKNOWN_ERROR response", back)
			}
		})
	}
}

func TestCollapseNewlines(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"\n":            "",
		"a":             "a",
		"a\nb":          "a\nb",
		"a\n\nb\n\n\nc": "a\nb\nc",
		"a\n\n":         "a",
		"\n\na\n":       "\na",
	} {
		if got := string(collapseNewlines([]byte(in))); got != want {
			t.Errorf("collapseNewlines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	r, err := Parse([]byte(`{"status":"OVER_QUERY_LIMIT","error_message":"quota","results":null,
		"html_attributions":["a"],"next_page_token":"t","debug":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{
		Status:           "OVER_QUERY_LIMIT",
		ErrorMessage:     "quota",
		HTMLAttributions: []json.RawMessage{json.RawMessage(`"a"`)},
		NextPageToken:    "t",
		Extra:            map[string]json.RawMessage{"debug": json.RawMessage(`{"x":1}`)},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Parse = %+v, want %+v", r, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, body := range []string{
		``,
		`null`,
		`[]`,
		`"OK"`,
		`{`,
		`{}`,
		`{"results":[]}`,
		`{"status":""}`,
		`{"status":3}`,
		`{"status":"OK","results":{}}`,
		`{"status":"OK","results":[1]}`,
		`{"status":"OK","results":[null]}`,
		`{"status":"OK","error_message":[]}`,
		`{"status":"OK","html_attributions":"x"}`,
		`{"status":"OK"} trailing`,
	} {
		if r, err := Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", body, r)
		}
	}
}

// TestFormatAgreesWithEncodingJSON checks the scanner's idea of validity.
func TestFormatAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`0`, `-0`, `-`, `01`, `1.`, `1.5e`, `1e+5`, `1E-05`, `.5`, `+1`, `1.5e3x`,
		`"\u12"`, `"\x"`, "\"\x01\"", "\"\xff\"", `"\ud800"`, `"\udc00\ud800x"`,
		`[1,]`, `[,1]`, `{"a" 1}`, `{"a":1,}`, `{1:1}`, `[1 2]`, ` [ ] `, `{ } x`,
		`nul`, `truex`, `[tru]`, `["a",{}]`, `[{} ]`, `[{"a":[]}]`,
	} {
		_, err := format(nil, []byte(in))
		if valid := json.Valid([]byte(in)); valid != (err == nil) {
			t.Errorf("format(%q): err = %v, but json.Valid = %v", in, err, valid)
		}
	}
}

func TestFormatDepthLimit(t *testing.T) {
	for _, open := range []string{"[", `{"a":`} {
		close := map[string]string{"[": "]", `{"a":`: "}"}[open]
		deep := strings.Repeat(open, maxDepth) + "1" + strings.Repeat(close, maxDepth)
		if _, err := format(nil, []byte(deep)); err != nil {
			t.Errorf("%s depth %d: %v", open, maxDepth, err)
		}
		for _, tooDeep := range []string{
			open + deep + close,
			strings.Replace(open+deep+close, "1", "[]", 1),
			strings.Replace(open+deep+close, "1", "{}", 1),
		} {
			if _, err := format(nil, []byte(tooDeep)); !errors.Is(err, errTooDeep) {
				t.Errorf("%s depth %d: err = %v, want errTooDeep", open, maxDepth+1, err)
			}
		}
	}
}

// FuzzRender feeds arbitrary bytes to the formatter and, when they parse as a
// legacy response, to Parse and Render.
func FuzzRender(f *testing.F) {
	for _, name := range realSamples {
		f.Add(readTestdata(f, name))
	}
	for _, s := range []string{
		`{}`, `[]`, `{"status":"OK","results":[{}],"x":[[]]}`,
		`{"a":"<&>\u2028\ud83d\ude00\ud800\n\"","b":-1.5E+300,"c":[null,true,false]}`,
		"{\"a\":\"\xff\xfe\"}",
		`{"status":"OK","results":[{"a":1},{"b":2}],"html_attributions":["x"],"next_page_token":"t"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkRenderFuzz)
}

// checkRenderFuzz is the body of FuzzRender.
func checkRenderFuzz(t *testing.T, in []byte) {
	{
		out, err := format(nil, in)
		if errors.Is(err, errTooDeep) {
			return // valid JSON deeper than herd accepts
		}
		if valid := json.Valid(in); valid != (err == nil) {
			t.Fatalf("format: err = %v, but json.Valid = %v", err, valid)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("format output is not valid JSON: %q", out)
		}
		if !reflect.DeepEqual(decodeAny(t, in), decodeAny(t, out)) {
			t.Fatalf("format changed the value:\n in: %q\nout: %q", in, out)
		}
		if again, err := format(nil, out); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("format is not idempotent: %v\n%q\n%q", err, out, again)
		}

		r, err := Parse(in)
		if err != nil {
			return
		}
		rendered := r.Render(0)
		checkRenderInvariants(t, rendered)
		back, err := Parse(rendered)
		if err != nil {
			t.Fatalf("Parse(Render(r)): %v\n%s", err, rendered)
		}
		if again := back.Render(0); !bytes.Equal(again, rendered) {
			t.Fatalf("Render(Parse(Render(r))) != Render(r):\n%s\n%s", rendered, again)
		}
		// Render keeps every member's value, with the documented defaults.
		want := decodeAny(t, in).(map[string]any)
		for _, name := range []string{"html_attributions", "results"} {
			if want[name] == nil {
				want[name] = []any{}
			}
		}
		for _, name := range []string{"error_message", "next_page_token"} {
			if want[name] == nil || want[name] == "" {
				delete(want, name)
			}
		}
		if got := decodeAny(t, rendered); !reflect.DeepEqual(got, want) {
			t.Fatalf("Render changed the value:\n in: %q\nout: %q", in, rendered)
		}
		cut, err := Parse(r.Render(1))
		if err != nil || len(cut.Results) > 1 {
			t.Fatalf("Render(1): %v, %d results", err, len(cut.Results))
		}
	}
}

// decodeAny decodes JSON keeping numbers as their text.
func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func BenchmarkRender(b *testing.B) {
	r, err := Parse(readTestdata(b, "legacy_kokubunji_netcafe.json"))
	if err != nil {
		b.Fatal(err)
	}
	// Twenty results, the most a WHATSAT can ask for.
	for len(r.Results) < MaxBound {
		r.Results = append(r.Results, r.Results[len(r.Results)%2])
	}
	b.SetBytes(int64(len(r.Render(0))))
	b.ReportAllocs()
	for b.Loop() {
		r.Render(MaxBound)
	}
}

func BenchmarkParse(b *testing.B) {
	body := readTestdata(b, "legacy_kokubunji_netcafe.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
