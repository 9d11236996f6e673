package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"herd/internal/places"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loadReal loads the embedded data once for all tests that need it.
var loadReal = sync.OnceValues(Load)

func realIndex(t testing.TB) *Index {
	t.Helper()
	x, err := loadReal()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// geo is one synthetic GeoNames row.
type geo struct {
	id       int
	name     string
	lat, lng float64
	code     string
	pop      int
}

// airport is one synthetic OpenFlights row.
type airport struct {
	id       int
	name     string
	lat, lng float64
	city     string
}

// synth builds an index from synthetic rows through the real parser.
func synth(t testing.TB, gs []geo, as []airport) *Index {
	t.Helper()
	var g, a strings.Builder
	g.WriteString("# header\n")
	for _, r := range gs {
		fmt.Fprintf(&g, "%d\t%s\t%d\t%d\tP\t%s\tUS\tCA\tCalifornia\t%d\n",
			r.id, r.name, int32(math.Round(r.lat*1e5)), int32(math.Round(r.lng*1e5)), r.code, r.pop)
	}
	for _, r := range as {
		fmt.Fprintf(&a, "%d\t%s\t%d\t%d\t%s\n",
			r.id, r.name, int32(math.Round(r.lat*1e5)), int32(math.Round(r.lng*1e5)), r.city)
	}
	b := newBuilder()
	if err := b.read(strings.NewReader(g.String()), sourceGeoNames); err != nil {
		t.Fatal(err)
	}
	if err := b.read(strings.NewReader(a.String()), sourceOpenFlights); err != nil {
		t.Fatal(err)
	}
	x, err := b.build()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// result is the part of a result object the tests look at.
type result struct {
	Geometry struct {
		Location struct{ Lat, Lng float64 }
		Viewport struct{ Northeast, Southwest struct{ Lat, Lng float64 } }
	}
	Name      string
	PlaceID   string `json:"place_id"`
	Reference string
	Scope     string
	Types     []string
	Vicinity  string
}

func nearby(t testing.TB, f places.Finder, lat, lng, radiusM float64, bound int) (*places.Response, []result) {
	t.Helper()
	resp, err := f.Nearby(context.Background(), places.Query{Lat: lat, Lng: lng, RadiusM: radiusM, Bound: bound})
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]result, len(resp.Results))
	for i, raw := range resp.Results {
		if err := json.Unmarshal(raw, &rs[i]); err != nil {
			t.Fatalf("result %d: %v\n%s", i, err, raw)
		}
	}
	return resp, rs
}

func names(rs []result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lng1, lat2, lng2 float64
		wantM, tolM            float64
	}{
		{"same point", 34.06893, -118.445127, 34.06893, -118.445127, 0, 0},
		// Rosetta Code "Haversine formula": BNA to LAX with R = 6371 km.
		{"BNA-LAX", 36.12, -86.67, 33.94, -118.40, 2886444.44283798, 0.01},
		{"1 degree of longitude at the equator", 0, 0, 0, 1, 2 * math.Pi * earthRadiusM / 360, 1e-6},
		{"1 degree of latitude", 10, 20, 11, 20, 2 * math.Pi * earthRadiusM / 360, 1e-6},
		{"pole to pole", 90, 0, -90, 0, math.Pi * earthRadiusM, 1e-6},
		{"antipodes", 0, 0, 0, 180, math.Pi * earthRadiusM, 1e-6},
		{"across the antimeridian", 0, 179.99, 0, -179.99, 0.02 * 2 * math.Pi * earthRadiusM / 360, 1e-6},
		{"at the pole longitude does not matter", 90, 0, 90, 123, 0, 1e-6},
		{"UCLA to Santa Monica", 34.06893, -118.445127, 34.01949, -118.49138, 6950, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := distance(tt.lat1, tt.lng1, tt.lat2, tt.lng2)
			if math.Abs(got-tt.wantM) > tt.tolM {
				t.Errorf("distance = %.6f m, want %.6f ± %g", got, tt.wantM, tt.tolM)
			}
			if back := distance(tt.lat2, tt.lng2, tt.lat1, tt.lng1); math.Abs(back-got) > 1e-6 {
				t.Errorf("not symmetric: %v vs %v", got, back)
			}
		})
	}
}

func TestUCLA(t *testing.T) {
	resp, rs := nearby(t, realIndex(t), 34.068930, -118.445127, 10000, 20)
	if resp.Status != places.StatusOK {
		t.Fatalf("status %q", resp.Status)
	}
	got := names(rs)
	for _, want := range []string{"Westwood", "Century City", "Beverly Hills", "Santa Monica", "Culver City"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	for _, r := range rs {
		if d := distance(34.068930, -118.445127, r.Geometry.Location.Lat, r.Geometry.Location.Lng); d > 10000 {
			t.Errorf("%s is %.0f m away", r.Name, d)
		}
	}
	// The airport is among the results, so both credits are present.
	if !slices.Contains(got, "Santa Monica Municipal Airport") {
		t.Errorf("missing the Santa Monica airport in %q", got)
	}
	wantCredits := []json.RawMessage{creditGeoNames, creditOpenFlights}
	if !slices.EqualFunc(resp.HTMLAttributions, wantCredits, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Errorf("html_attributions = %s", resp.HTMLAttributions)
	}
	// Bound cuts to the most prominent.
	_, top := nearby(t, realIndex(t), 34.068930, -118.445127, 10000, 2)
	if got := names(top); !slices.Equal(got, []string{"Santa Monica", "Culver City"}) {
		t.Errorf("top 2 = %q", got)
	}
}

func TestResultFormat(t *testing.T) {
	x := synth(t, []geo{
		{1, `Quote "and" back\slash`, 10, 20, "PPL", 100},
		{2, "Neighbourhood", 10.001, 20, "PPLX", 0},
	}, []airport{{7, "Some Airport", 10, 20.001, "Some City"}})
	resp, rs := nearby(t, x, 10, 20, 1000, 20)
	if len(rs) != 3 {
		t.Fatalf("got %d results", len(rs))
	}
	// Population 100: the viewport's half-side is 1 150 m, 0.0103422° of
	// latitude and 0.0103422°/cos 10° = 0.0105017° of longitude.
	want := `{"geometry":{"location":{"lat":10,"lng":20},"viewport":{"northeast":{"lat":10.0103422,"lng":20.0105017},` +
		`"southwest":{"lat":9.9896578,"lng":19.9894983}}},` +
		`"icon":"https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png",` +
		`"icon_background_color":"#7B9EB0",` +
		`"icon_mask_base_uri":"https://maps.gstatic.com/mapfiles/place_api/icons/v2/generic_pinlet",` +
		`"name":"Quote \"and\" back\\slash","place_id":"geonames:1","reference":"geonames:1","scope":"APP",` +
		`"types":["locality","political"],"vicinity":"California, US"}`
	if got := string(resp.Results[0]); got != want {
		t.Errorf("result 0:\n got %s\nwant %s", got, want)
	}
	if rs[0].Name != `Quote "and" back\slash` {
		t.Errorf("name round trip: %q", rs[0].Name)
	}
	wantTypes := map[string][]string{
		"geonames:1":    {"locality", "political"},
		"geonames:2":    {"neighborhood", "political"},
		"openflights:7": {"airport", "point_of_interest", "establishment"},
	}
	for i, r := range rs {
		if !slices.Equal(r.Types, wantTypes[r.PlaceID]) || r.Reference != r.PlaceID || r.Scope != "APP" {
			t.Errorf("result %d: %+v", i, r)
		}
		checkKeyOrder(t, resp.Results[i])
	}
	if rs[1].Vicinity != "Some City" {
		t.Errorf("airport vicinity %q", rs[1].Vicinity)
	}
}

// checkKeyOrder fails unless every object in raw has its keys in
// alphabetical order.
func checkKeyOrder(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case orderedObject:
			if !slices.IsSorted(v.keys) {
				t.Errorf("keys out of order: %q", v.keys)
			}
			for _, e := range v.vals {
				walk(e)
			}
		}
	}
	v, err := decodeOrdered(json.NewDecoder(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	walk(v)
}

type orderedObject struct {
	keys []string
	vals []any
}

func decodeOrdered(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var o orderedObject
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeOrdered(d)
			if err != nil {
				return nil, err
			}
			o.keys, o.vals = append(o.keys, k.(string)), append(o.vals, v)
		}
		_, err := d.Token()
		return o, err
	case json.Delim('['):
		var a []any
		for d.More() {
			v, err := decodeOrdered(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return tok, nil
}

func TestRanking(t *testing.T) {
	// All within 3 km of (0, 0); ids chosen so that id order differs from rank.
	x := synth(t, []geo{
		{1, "neighbourhood big", 0.001, 0, "PPLX", 9_000_000},
		{2, "village far", 0.02, 0, "PPL", 500},
		{3, "village near", 0.01, 0, "PPL", 500},
		{4, "village same place higher id", 0.01, 0, "PPL", 500},
		{5, "town", 0.02, 0.01, "PPL", 20_000},
		{6, "county seat", 0.02, -0.01, "PPLA2", 100},
		{7, "commune", 0.015, 0.015, "PPLA4", 50},
		{8, "district seat", -0.02, 0, "PPLA3", 60},
		{9, "state capital", 0, 0.02, "PPLA", 1},
		{10, "seat of government", 0, -0.02, "PPLG", 2},
		{11, "capital", -0.015, -0.015, "PPLC", 0},
		{12, "unknown code", 0.005, 0, "", 600},
		{13, "too far", 0.5, 0, "PPLC", 10_000_000},
	}, []airport{{14, "airport", 0, 0.001, "city"}})
	want := []string{
		"capital", "seat of government", "state capital", "county seat",
		"district seat", "commune",
		"town", "unknown code", "village near", "village same place higher id", "village far",
		"airport", "neighbourhood big",
	}
	_, rs := nearby(t, x, 0, 0, 3000, 20)
	if got := names(rs); !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	for bound := 1; bound <= len(want); bound++ {
		_, rs := nearby(t, x, 0, 0, 3000, bound)
		if got := names(rs); !slices.Equal(got, want[:bound]) {
			t.Errorf("bound %d: got %q", bound, got)
		}
	}
}

func TestAntimeridian(t *testing.T) {
	x := synth(t, []geo{
		{1, "east", 0, 179.99, "PPL", 0},
		{2, "west", 0, -179.99, "PPL", 0},
		{3, "on the line", 0, 180, "PPL", 0},
		{4, "on the line too", 0.001, -180, "PPL", 0},
		{5, "far west", 0, -179.9, "PPL", 0}, // 12.2 km from 179.99
		{6, "north", 65, -179.95, "PPL", 0},
	}, nil)
	tests := []struct {
		name     string
		lat, lng float64
		radiusM  float64
		want     []string
	}{
		{"from the east", 0, 179.99, 5000, []string{"east", "on the line", "on the line too", "west"}},
		{"from the west", 0, -179.99, 5000, []string{"east", "on the line", "on the line too", "west"}},
		{"from +180", 0, 180, 1200, []string{"east", "on the line", "on the line too", "west"}},
		{"from -180", 0, -180, 1200, []string{"east", "on the line", "on the line too", "west"}},
		{"wider", 0, 179.99, 13000, []string{"east", "far west", "on the line", "on the line too", "west"}},
		// At 65° a degree of longitude is 47 km: 0.1° is 4.7 km.
		{"high latitude", 65, 179.95, 5000, []string{"north"}},
		{"nothing", 30, 179.99, 50000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rs := nearby(t, x, tt.lat, tt.lng, tt.radiusM, 20)
			got := names(rs)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// Real data: Matei Airport on Taveuni, Fiji, lies at -179.877.
	_, rs := nearby(t, realIndex(t), -16.69, 179.99, 20000, 20)
	if !slices.Contains(names(rs), "Matei Airport") {
		t.Errorf("Fiji: got %q", names(rs))
	}
}

func TestPoles(t *testing.T) {
	x := synth(t, []geo{
		{1, "n0", 89.99, 0, "PPL", 0},
		{2, "n90", 89.99, 90, "PPL", 0},
		{3, "n180", 89.99, 180, "PPL", 0},
		{4, "n-90", 89.99, -90, "PPL", 0},
		{5, "north pole", 90, 0, "PPL", 0},
		{6, "s45", -89.95, 45, "PPL", 0},
		{7, "s-135", -89.95, -135, "PPL", 0},
		{8, "n far", 88, 0, "PPL", 0},
	}, nil)
	tests := []struct {
		name     string
		lat, lng float64
		radiusM  float64
		want     []string
	}{
		{"at the north pole", 90, 0, 2000, []string{"n-90", "n0", "n180", "n90", "north pole"}},
		{"at the north pole, other longitude", 90, -123, 2000, []string{"n-90", "n0", "n180", "n90", "north pole"}},
		// From (89.95, 0), n180 is 0.06° = 6.7 km away over the pole.
		{"near the north pole", 89.95, 0, 7000, []string{"n-90", "n0", "n180", "n90", "north pole"}},
		{"near the north pole, small", 89.95, 0, 5000, []string{"n0"}},
		// The two southern points are 0.1° = 11.1 km apart, over the pole.
		{"south", -89.95, 45, 11200, []string{"s-135", "s45"}},
		{"south, small", -89.95, 45, 11000, []string{"s45"}},
		{"south pole", -90, 0, 5600, []string{"s-135", "s45"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rs := nearby(t, x, tt.lat, tt.lng, tt.radiusM, 20)
			got := names(rs)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A pole's viewport spans every longitude.
	_, rs := nearby(t, x, 90, 0, 10, 1)
	if v := rs[0].Geometry.Viewport; v.Northeast.Lat != 90 || v.Northeast.Lng != 180 || v.Southwest.Lng != -180 {
		t.Errorf("pole viewport %+v", v)
	}

	// Real data: the South Pole Station airport.
	_, rs = nearby(t, realIndex(t), -89.9, 123, 20000, 20)
	if !slices.Contains(names(rs), "South Pole Station Airport") {
		t.Errorf("south pole: got %q", names(rs))
	}
}

func TestViewportAcrossAntimeridian(t *testing.T) {
	x := synth(t, []geo{{1, "east", 0, 179.999, "PPL", 1_000_000}}, nil)
	_, rs := nearby(t, x, 0, 179.999, 10, 1)
	v := rs[0].Geometry.Viewport
	if !(v.Northeast.Lng < 0 && v.Southwest.Lng > 0 && v.Northeast.Lat > 0 && v.Southwest.Lat < 0) {
		t.Errorf("viewport %+v", v)
	}
}

// TestSearchMatchesBruteForce compares the index with a scan of every place,
// on random data crowded near the poles and the antimeridian.
func TestSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	point := func() (float64, float64) {
		switch rng.IntN(4) {
		case 0: // near a pole
			lat := 89 + rng.Float64()
			if rng.IntN(2) == 0 {
				lat = -lat
			}
			return lat, rng.Float64()*360 - 180
		case 1: // near the antimeridian
			return rng.Float64()*180 - 90, 180 - rng.Float64()*2 + float64(rng.IntN(2))*-358
		default: // uniform on the sphere
			return math.Asin(2*rng.Float64()-1) * 180 / math.Pi, rng.Float64()*360 - 180
		}
	}
	var gs []geo
	for i := range 5000 {
		lat, lng := point()
		gs = append(gs, geo{i + 1, fmt.Sprint("p", i), lat, lng, "PPL", 0})
	}
	x := synth(t, gs, nil)
	for range 2000 {
		lat, lng := point()
		radius := rng.Float64() * 50_000
		if rng.IntN(10) == 0 {
			radius = rng.Float64() * 3_000_000
		}
		top := topK{x: x, k: len(x.places)}
		x.search(lat, lng, radius, &top)
		var got, want []uint32
		for _, c := range top.c {
			got = append(got, x.places[c.i].id)
		}
		h, limit := newHaversine(lat, lng), havLimit(radius)
		for _, p := range x.places {
			if h.hav(float64(p.lat)/1e5, float64(p.lon)/1e5) <= limit {
				want = append(want, p.id)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("query (%v, %v) radius %v: got %v, want %v", lat, lng, radius, got, want)
		}
	}
}

func TestZeroResults(t *testing.T) {
	// Point Nemo, the oceanic pole of inaccessibility.
	resp, rs := nearby(t, realIndex(t), -48.8767, -123.3933, 50000, 20)
	if resp.Status != places.StatusZeroResults || len(rs) != 0 || resp.Results == nil || len(resp.HTMLAttributions) != 0 {
		t.Errorf("got %+v", resp)
	}
}

func TestInvalidQuery(t *testing.T) {
	x := synth(t, []geo{{1, "a", 0, 0, "PPL", 0}}, nil)
	for _, q := range []places.Query{
		{Lat: math.NaN(), Lng: 0, RadiusM: 10, Bound: 1},
		{Lat: 91, Lng: 0, RadiusM: 10, Bound: 1},
		{Lat: 0, Lng: -180.5, RadiusM: 10, Bound: 1},
		{Lat: 0, Lng: 0, RadiusM: 0, Bound: 1},
		{Lat: 0, Lng: 0, RadiusM: math.NaN(), Bound: 1},
	} {
		resp, err := x.Nearby(context.Background(), q)
		if err != nil || resp.Status != statusInvalidRequest || len(resp.Results) != 0 {
			t.Errorf("%+v: %+v, %v", q, resp, err)
		}
	}
	// An out-of-range bound means MaxBound.
	resp, _ := x.Nearby(context.Background(), places.Query{Lat: 0, Lng: 0, RadiusM: 10, Bound: 0})
	if resp.Status != places.StatusOK || len(resp.Results) != 1 {
		t.Errorf("bound 0: %+v", resp)
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"columns":     "1\tx\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\n",
		"extra":       "1\tx\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\t9\n",
		"latitude":    "1\tx\t9000001\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"longitude":   "1\tx\t0\t-18000001\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"id":          "0\tx\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"number":      "1\tx\t1.5\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"population":  "1\tx\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\t-4\n",
		"empty name":  "1\t\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"long name":   "1\t" + strings.Repeat("x", 256) + "\t0\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
		"empty coord": "1\tx\t\t0\tP\tPPL\tUS\tCA\tCalifornia\t0\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if err := newBuilder().read(strings.NewReader(in), sourceGeoNames); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := newBuilder().build(); err == nil {
		t.Error("empty index built")
	}
	if err := newBuilder().readGz(strings.NewReader("not gzip"), sourceGeoNames); err == nil {
		t.Error("bad gzip accepted")
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          `"plain"`,
		"Zürich":         `"Zürich"`,
		"a\"b\\c":        `"a\"b\\c"`,
		"tab\there\x01":  `"tab\u0009here\u0001"`,
		"bad \xff utf-8": "\"bad \ufffd utf-8\"",
		"<&>":            `"<&>"`,
	} {
		got := string(appendString(nil, in))
		if got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// blockedLoader returns a load function that waits for release and then
// returns x or err.
func blockedLoader(x *Index, err error) (load func() (*Index, error), release func()) {
	ch := make(chan struct{})
	return func() (*Index, error) { <-ch; return x, err }, func() { close(ch) }
}

func TestFinderCancelledWhileLoading(t *testing.T) {
	x := synth(t, []geo{{1, "a", 0, 0, "PPL", 0}}, nil)
	load, release := blockedLoader(x, nil)
	f := newFinder(load)
	q := places.Query{Lat: 0, Lng: 0, RadiusM: 100, Bound: 1}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Nearby(ctx, q); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while loading: err = %v", err)
	}

	type answer struct {
		resp *places.Response
		err  error
	}
	waiting := make(chan answer, 1)
	go func() {
		resp, err := f.Nearby(context.Background(), q)
		waiting <- answer{resp, err}
	}()
	release()
	a := <-waiting
	if a.err != nil || a.resp.Status != places.StatusOK {
		t.Fatalf("after load: %+v, %v", a.resp, a.err)
	}
	// Loaded: an ended context no longer matters.
	if resp, err := f.Nearby(ctx, q); err != nil || resp.Status != places.StatusOK {
		t.Fatalf("after load, cancelled ctx: %+v, %v", resp, err)
	}
}

func TestFinderLoadError(t *testing.T) {
	boom := errors.New("boom")
	load, release := blockedLoader(nil, boom)
	release()
	f := newFinder(load)
	if _, err := f.Nearby(context.Background(), places.Query{RadiusM: 1, Bound: 1}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// TestFinderConcurrent queries a loading Finder from many goroutines; run it
// with -race.
func TestFinderConcurrent(t *testing.T) {
	f := New()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				lat := float64(g*20 - 80)
				lng := float64(i*14 - 175)
				resp, err := f.Nearby(context.Background(), places.Query{Lat: lat, Lng: lng, RadiusM: 50000, Bound: 1 + i%20})
				if err == nil && resp.Status != places.StatusOK && resp.Status != places.StatusZeroResults {
					err = fmt.Errorf("status %q", resp.Status)
				}
				if err == nil && len(resp.Results) > 1+i%20 {
					err = fmt.Errorf("%d results for bound %d", len(resp.Results), 1+i%20)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLoadFootprint checks that the loaded index stays small and logs its
// size; see also BenchmarkLoad.
func TestLoadFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole data set")
	}
	before := heapAlloc()
	x, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	after := heapAlloc()
	runtime.KeepAlive(x)
	mb := float64(after-before) / (1 << 20)
	t.Logf("%d places, %d vicinities, heap after load %.1f MiB", x.Len(), len(x.vicinity), mb)
	if x.Len() < 200_000 {
		t.Errorf("only %d places", x.Len())
	}
	if mb > 32 {
		t.Errorf("heap after load %.1f MiB, want at most 32", mb)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestAppendFixed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []int64{0, 1, -1, 5, -5, 10, 100000, -100000, 1234567, -1800000000, 1800000000, 900000000, 12345, -99999}
	for range 1000 {
		values = append(values, rng.Int64N(3600000001)-1800000000)
	}
	for _, v := range values {
		for _, dec := range []int{5, 7} {
			want := strconv.AppendFloat(nil, float64(v)/math.Pow10(dec), 'f', -1, 64)
			if got := appendFixed(nil, v, dec); string(got) != string(want) {
				t.Errorf("appendFixed(%d, %d) = %s, want %s", v, dec, got, want)
			}
		}
	}
}
