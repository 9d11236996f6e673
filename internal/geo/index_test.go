package geo

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// randomPoint is a point anywhere, with a third of them crowded around the
// antimeridian and a third near the poles, where latitude/longitude boxes
// are at their strangest.
func randomPoint(r *rand.Rand) Point {
	switch r.IntN(3) {
	case 0:
		lon := 180 - r.Float64()*2
		if r.IntN(2) == 0 {
			lon = -lon
		}
		return Point{Lat: r.Float64()*180 - 90, Lon: lon}
	case 1:
		lat := 90 - r.Float64()*3
		if r.IntN(2) == 0 {
			lat = -lat
		}
		return Point{Lat: lat, Lon: r.Float64()*360 - 180}
	}
	// Uniform on the sphere.
	return Point{Lat: math.Asin(2*r.Float64()-1) / rad, Lon: r.Float64()*360 - 180}
}

// oracle answers Nearby by looking at every client.
func oracle(pts map[string]Point, c Point, radiusM float64, limit int, keep func(string) bool) []Hit {
	var out []Hit
	for id, p := range pts {
		if d := Distance(c, p); d <= radiusM && (keep == nil || keep(id)) {
			out = append(out, Hit{Client: id, Point: p, DistanceM: d})
		}
	}
	slices.SortFunc(out, func(a, b Hit) int {
		if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
			return c
		}
		return cmp.Compare(a.Client, b.Client)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// TestNearbyMatchesBruteForce compares Nearby with a scan of every client,
// over 10,000 clients worldwide (many around ±180° and near the poles), for
// random queries of every size: the same clients in the same order.
func TestNearbyMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := New()
	pts := map[string]Point{}
	for i := range 10000 {
		id := fmt.Sprintf("c%05d", i)
		p := randomPoint(r)
		pts[id] = p
		x.Set(id, p)
	}
	// Some clients move, some go: the index must follow.
	for i := range 2000 {
		id := fmt.Sprintf("c%05d", r.IntN(10000))
		if i%4 == 0 {
			x.Remove(id)
			delete(pts, id)
			continue
		}
		p := randomPoint(r)
		pts[id] = p
		x.Set(id, p)
	}
	if x.Len() != len(pts) {
		t.Fatalf("index holds %d clients, want %d", x.Len(), len(pts))
	}
	radii := []float64{1e3, 50e3, 300e3, 2000e3, 10000e3, 20100e3}
	odd := func(id string) bool { return id[len(id)-1]%2 == 1 }
	for q := range 1500 {
		c := randomPoint(r)
		radius := radii[q%len(radii)] * (0.5 + r.Float64())
		limit := []int{0, 1, 5, 20, 100}[r.IntN(5)]
		var keep func(string) bool
		if q%7 == 0 {
			keep = odd
		}
		got := x.Nearby(c, radius, limit, keep)
		want := oracle(pts, c, radius, limit, keep)
		if !slices.Equal(got, want) {
			t.Fatalf("query %d: center %+v radius %.0f m limit %d: got %d hits, want %d\ngot  %v\nwant %v",
				q, c, radius, limit, len(got), len(want), head(got), head(want))
		}
	}
}

func head(h []Hit) string {
	var b strings.Builder
	for i, x := range h {
		if i == 5 {
			b.WriteString("…")
			break
		}
		fmt.Fprintf(&b, "%s@%.1f ", x.Client, x.DistanceM)
	}
	return b.String()
}

// TestAcrossTheAntimeridianAndThePole checks the cases by hand: a client
// just across ±180° and one on the far side of a pole are near.
func TestAcrossTheAntimeridianAndThePole(t *testing.T) {
	x := New()
	x.Set("fiji-east", Point{-17, 179.999})
	x.Set("fiji-west", Point{-17, -179.999})
	x.Set("north-a", Point{89.999, 0})
	x.Set("north-b", Point{89.999, 180})
	x.Set("far", Point{0, 0})
	hits := x.Nearby(Point{-17, 179.999}, 1000, 0, nil)
	if len(hits) != 2 || hits[0].Client != "fiji-east" || hits[1].Client != "fiji-west" || math.Abs(hits[1].DistanceM-212.7) > 1 {
		t.Fatalf("across the antimeridian: %+v", hits)
	}
	hits = x.Nearby(Point{89.999, 0}, 1000, 0, nil)
	if len(hits) != 2 || hits[1].Client != "north-b" || math.Abs(hits[1].DistanceM-222.4) > 1 {
		t.Fatalf("across the pole: %+v", hits)
	}
	if hits := x.Nearby(Point{0, 0}, 0, 0, nil); len(hits) != 1 || hits[0].DistanceM != 0 {
		t.Fatalf("radius 0 at a client: %+v", hits)
	}
}

func TestCircleContains(t *testing.T) {
	c := Circle{Center: Point{0, 180}, RadiusM: 1000}
	if !c.Contains(Point{0, -179.995}) || c.Contains(Point{0, -179.98}) {
		t.Fatal("fence across the antimeridian")
	}
}

// benchIndex is an index of n clients spread uniformly over the Earth.
func benchIndex(b *testing.B, n int) (*Index, []Point) {
	r := rand.New(rand.NewPCG(3, 4))
	x := New()
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{Lat: math.Asin(2*r.Float64()-1) / rad, Lon: r.Float64()*360 - 180}
		x.Set(fmt.Sprintf("client-%07d", i), pts[i])
	}
	return x, pts
}

var idx1M struct {
	x   *Index
	pts []Point
}

func oneMillion(b *testing.B) (*Index, []Point) {
	if idx1M.x == nil {
		idx1M.x, idx1M.pts = benchIndex(b, 1_000_000)
	}
	return idx1M.x, idx1M.pts
}

// BenchmarkNearby1M asks for the 20 nearest clients within 1 km and 50 km
// of a random client, among 1,000,000.
func BenchmarkNearby1M(b *testing.B) {
	x, pts := oneMillion(b)
	for _, km := range []float64{1, 50} {
		b.Run(fmt.Sprintf("radius=%gkm", km), func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 6))
			found := 0
			for b.Loop() {
				found += len(x.Nearby(pts[r.IntN(len(pts))], km*1000, 20, nil))
			}
			b.ReportMetric(float64(found)/float64(b.N), "clients/op")
		})
	}
}

// BenchmarkSet1M moves random clients among 1,000,000.
func BenchmarkSet1M(b *testing.B) {
	x, _ := oneMillion(b)
	r := rand.New(rand.NewPCG(7, 8))
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("client-%07d", r.IntN(1_000_000))
	}
	i := 0
	for b.Loop() {
		x.Set(ids[i%len(ids)], Point{Lat: r.Float64()*180 - 90, Lon: r.Float64()*360 - 180})
		i++
	}
}

// BenchmarkMemory1M reports the heap the index takes per client at
// 1,000,000 clients (the ids' bytes, which the location table holds
// anyway, not counted).
func BenchmarkMemory1M(b *testing.B) {
	for b.Loop() {
		ids := make([]string, 1_000_000)
		for i := range ids {
			ids[i] = fmt.Sprintf("client-%07d", i)
		}
		r := rand.New(rand.NewPCG(9, 10))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := New()
		for _, id := range ids {
			x.Set(id, Point{Lat: math.Asin(2*r.Float64()-1) / rad, Lon: r.Float64()*360 - 180})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "bytes/client")
		runtime.KeepAlive(x)
		runtime.KeepAlive(ids)
	}
}
