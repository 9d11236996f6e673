package geo

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/tidwall/rtree"
)

// Index holds the latest point of every client, safe for concurrent use:
// one writer at a time (the table's change hook) and any number of
// readers.
type Index struct {
	mu sync.RWMutex
	tr rtree.RTreeGN[float64, string] // guarded by mu: a point box [lat, lon] per client, data the client id
	at map[string]Point               // guarded by mu: each client's point; the key is the index's own copy of the id, shared with the tree's data
}

// New returns an empty index.
func New() *Index { return &Index{at: map[string]Point{}} }

// Set records that client is at p, and returns where it was before (had
// is false for a client the index did not hold).
func (x *Index) Set(client string, p Point) (old Point, had bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, had = x.at[client]
	if had {
		if old == p {
			return old, had
		}
		x.tr.Delete(box(old), box(old), client)
	} else {
		// The index keeps its own copy of the id (in the map and the
		// tree), so that it holds no caller's larger string alive.
		client = strings.Clone(client)
	}
	x.at[client] = p
	x.tr.Insert(box(p), box(p), client)
	return old, had
}

// Remove forgets client and returns where it was.
func (x *Index) Remove(client string) (old Point, had bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, had = x.at[client]
	if had {
		x.tr.Delete(box(old), box(old), client)
		delete(x.at, client)
	}
	return old, had
}

// Get returns the point of client.
func (x *Index) Get(client string) (Point, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p, ok := x.at[client]
	return p, ok
}

// Len returns the number of clients held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.at)
}

func box(p Point) [2]float64 { return [2]float64{p.Lat, p.Lon} }

// Hit is one client found by Nearby.
type Hit struct {
	Client    string
	Point     Point
	DistanceM float64
}

// Nearby returns the clients within radiusM metres of center for which keep
// (if not nil) returns true, nearest first, at most limit of them (limit
// <= 0: all). Clients at equal distances are ordered by id. keep is called
// with the index's read lock held, nearest first; it must not change the
// index.
func (x *Index) Nearby(center Point, radiusM float64, limit int, keep func(client string) bool) []Hit {
	lat, lon := center.Lat*rad, center.Lon*rad
	maxAngle := radiusM / EarthRadiusM
	// A box's bound is computed in float64: allow for its rounding, so
	// that no box holding a point within the radius is passed over.
	const slack = 1e-12
	// Boxes and points outside the circle's bounding box are beyond the
	// radius: they get a cheap distance past it instead of an exact one
	// (points nearer than boxes, so that the search stops at the first
	// point popped past the radius).
	bb := boundingBox(center, maxAngle)
	pastPoint, pastBox := maxAngle+0.5, maxAngle+1
	var hits []Hit
	last := 0.0 // the angle of the last hit
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.tr.Nearby(
		func(min, max [2]float64, client string, item bool) float64 {
			if !bb.intersects(min, max) {
				if item {
					return pastPoint
				}
				return pastBox
			}
			if item {
				return angle(lat, lon, min[0]*rad, min[1]*rad)
			}
			return math.Max(0, boxAngle(lat, lon, min[0]*rad, max[0]*rad, min[1]*rad, max[1]*rad)-slack)
		},
		func(min, max [2]float64, client string, a float64) bool {
			if a > maxAngle {
				return false
			}
			if limit > 0 && len(hits) >= limit && a > last {
				return false // enough, and no tie with the last one
			}
			if keep != nil && !keep(client) {
				return true
			}
			last = a
			hits = append(hits, Hit{Client: client, Point: Point{min[0], min[1]}, DistanceM: a * EarthRadiusM})
			return true
		},
	)
	slices.SortStableFunc(hits, func(a, b Hit) int {
		if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
			return c
		}
		return cmp.Compare(a.Client, b.Client)
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}

// latLonBox is a circle's bounding box in degrees: one latitude range and
// one or two longitude ranges (two when it crosses the antimeridian).
type latLonBox struct {
	latMin, latMax float64
	lon            [2][2]float64
	n              int
}

// boundingBox returns the box holding every point within angle (radians)
// of c, with a little margin for rounding (J. P. Matuschek, "Finding
// points within a distance of a latitude/longitude using bounding
// coordinates").
func boundingBox(c Point, a float64) latLonBox {
	const margin = 1e-9 // degrees
	lat, d := c.Lat*rad, a
	b := latLonBox{latMin: (lat-d)/rad - margin, latMax: (lat+d)/rad + margin}
	if b.latMin <= -90 || b.latMax >= 90 || d >= math.Pi/2 {
		// A pole is inside (or the circle is a hemisphere or more): every
		// longitude.
		b.latMin, b.latMax = max(b.latMin, -90), min(b.latMax, 90)
		b.lon[0], b.n = [2]float64{-180, 180}, 1
		return b
	}
	dlon := math.Asin(math.Sin(d)/math.Cos(lat))/rad + margin
	lo, hi := c.Lon-dlon, c.Lon+dlon
	switch {
	case lo < -180:
		b.lon[0], b.lon[1], b.n = [2]float64{lo + 360, 180}, [2]float64{-180, hi}, 2
	case hi > 180:
		b.lon[0], b.lon[1], b.n = [2]float64{lo, 180}, [2]float64{-180, hi - 360}, 2
	default:
		b.lon[0], b.n = [2]float64{lo, hi}, 1
	}
	return b
}

// intersects reports whether the box [min, max] ([lat, lon]) meets b.
func (b *latLonBox) intersects(min, max [2]float64) bool {
	if max[0] < b.latMin || min[0] > b.latMax {
		return false
	}
	for i := range b.n {
		if max[1] >= b.lon[i][0] && min[1] <= b.lon[i][1] {
			return true
		}
	}
	return false
}
