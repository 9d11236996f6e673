// Package geo is the spatial index of a server's clients: where each
// client is, which clients are near a point (nearest first, with exact
// great-circle distances), and whether a point is inside a fence. It is
// pure: no I/O, no knowledge of the protocol.
//
// Points are kept in an R-tree (github.com/tidwall/rtree, the tree Tile38
// is built on) over latitude and longitude. A nearest-first search walks
// the tree best-first, ordered by the great-circle distance from the
// query point to each node's latitude/longitude box — a true lower bound
// on the sphere, which takes the shorter way round in longitude — so it is
// correct across the antimeridian and near the poles without splitting
// queries, and stops as soon as the next box is beyond the radius or
// enough clients are found. (Tile38 searches its R-tree the same way, with
// the point-to-rectangle distance of Schubert, Zimek and Kriegel, "Geodetic
// Distance Queries on R-Trees for Indexing Geographic Data", 2013.)
package geo

import "math"

// EarthRadiusM is the mean radius of the Earth (IUGG), in metres: the
// sphere every distance is measured on.
const EarthRadiusM = 6371008.8

// Point is a location in decimal degrees.
type Point struct {
	Lat, Lon float64
}

const rad = math.Pi / 180

// Distance is the great-circle distance between a and b in metres
// (haversine on the sphere of radius EarthRadiusM).
func Distance(a, b Point) float64 {
	return angle(a.Lat*rad, a.Lon*rad, b.Lat*rad, b.Lon*rad) * EarthRadiusM
}

// angle is the central angle between two points given in radians.
func angle(lat1, lon1, lat2, lon2 float64) float64 {
	sdlat := math.Sin((lat2 - lat1) / 2)
	sdlon := math.Sin((lon2 - lon1) / 2)
	h := sdlat*sdlat + math.Cos(lat1)*math.Cos(lat2)*sdlon*sdlon
	if h > 1 {
		h = 1
	}
	return 2 * math.Asin(math.Sqrt(h))
}

// Circle is a fence: the points within RadiusM metres of Center.
type Circle struct {
	Center  Point
	RadiusM float64
}

// Contains reports whether p is inside the circle (on its edge counts).
func (c Circle) Contains(p Point) bool { return Distance(c.Center, p) <= c.RadiusM }

// boxAngle is the least central angle from the point (lat, lon) to any
// point of the box [latMin, latMax] × [lonMin, lonMax] (radians, the box not
// crossing the antimeridian): 0 inside it.
func boxAngle(lat, lon, latMin, latMax, lonMin, lonMax float64) float64 {
	if lon >= lonMin && lon <= lonMax {
		// The nearest point is on the same meridian.
		return max(0, latMin-lat, lat-latMax)
	}
	// The nearest point is on the meridian edge nearer in longitude,
	// measured either way round: for any latitude the distance grows with
	// the longitude difference (up to half a turn).
	east := math.Mod(lon-lonMax+4*math.Pi, 2*math.Pi) // from the east edge eastwards to lon
	west := math.Mod(lonMin-lon+4*math.Pi, 2*math.Pi) // from lon eastwards to the west edge
	edge, dlon := lonMax, east
	if west < east {
		edge, dlon = lonMin, west
	}
	// Along a meridian, cos(angle) = A sin φ + B cos φ is largest at
	// φ0 = atan2(A, B) and falls off away from it: the nearest point of
	// the edge is φ0 clamped to it, or one of its ends.
	a, b := math.Sin(lat), math.Cos(lat)*math.Cos(dlon)
	best := min(angle(lat, lon, latMin, edge), angle(lat, lon, latMax, edge))
	if phi := math.Atan2(a, b); phi > latMin && phi < latMax {
		best = min(best, angle(lat, lon, phi, edge))
	}
	return best
}
