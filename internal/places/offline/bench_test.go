package offline

import (
	"context"
	"runtime"
	"testing"

	"herd/internal/places"
)

// BenchmarkLoad measures decoding and indexing the whole embedded data set;
// heap-MiB is the heap the loaded index keeps.
func BenchmarkLoad(b *testing.B) {
	before := heapAlloc()
	var x *Index
	for b.Loop() {
		var err error
		if x, err = Load(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := heapAlloc()
	runtime.KeepAlive(x)
	b.ReportMetric(float64(after-before)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(x.Len()), "places")
}

// BenchmarkNearby measures whole queries (search, ranking and JSON) in dense
// areas, bound 20.
func BenchmarkNearby(b *testing.B) {
	x := realIndex(b)
	for _, bc := range []struct {
		name string
		q    places.Query
	}{
		{"UCLA/10km", places.Query{Lat: 34.068930, Lng: -118.445127, RadiusM: 10_000, Bound: 20}},
		{"UCLA/50km", places.Query{Lat: 34.068930, Lng: -118.445127, RadiusM: 50_000, Bound: 20}},
		{"Zurich/10km", places.Query{Lat: 47.37, Lng: 8.54, RadiusM: 10_000, Bound: 20}},
		{"Zurich/50km", places.Query{Lat: 47.37, Lng: 8.54, RadiusM: 50_000, Bound: 20}},
		{"Java/50km", places.Query{Lat: -7.25, Lng: 108.25, RadiusM: 50_000, Bound: 20}},
		{"Ocean/50km", places.Query{Lat: -48.8767, Lng: -123.3933, RadiusM: 50_000, Bound: 20}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := x.Nearby(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
			}
			top := topK{x: x, k: len(x.places)}
			x.search(bc.q.Lat, bc.q.Lng, bc.q.RadiusM, &top)
			b.ReportMetric(float64(len(top.c)), "in-range")
		})
	}
}
