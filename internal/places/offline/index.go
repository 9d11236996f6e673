package offline

import (
	"context"
	"encoding/json"
	"math"

	"herd/internal/places"
)

// earthRadiusM is the mean Earth radius (IUGG), used for all distances.
const earthRadiusM = 6_371_000.0

// Latitude bands of the index, in units of 1e-5 degree.
const (
	bandE5 = 10_000 // 0.1 degree
	nBands = 180 * 1e5 / bandE5
)

// kind is the kind of a place; a smaller kind is more prominent.
type kind uint8

const (
	kindCapital      kind = iota // PPLC
	kindAdmin1                   // PPLA, PPLG
	kindAdmin2                   // PPLA2
	kindAdminN                   // PPLA3, PPLA4, PPLA5
	kindLocality                 // PPL and every other populated place
	kindAirport                  // OpenFlights airport
	kindNeighborhood             // PPLX
)

// kindOf maps a GeoNames feature code to a kind.
func kindOf(code []byte) kind {
	switch string(code) {
	case "PPLC":
		return kindCapital
	case "PPLA", "PPLG":
		return kindAdmin1
	case "PPLA2":
		return kindAdmin2
	case "PPLA3", "PPLA4", "PPLA5":
		return kindAdminN
	case "PPLX":
		return kindNeighborhood
	}
	return kindLocality
}

// place is one entry of the index, kept small: 24 bytes.
type place struct {
	lat, lon int32  // units of 1e-5 degree
	id       uint32 // GeoNames or OpenFlights id, by kind
	pop      uint32 // population, 0 when unknown
	nameOff  uint32 // name is Index.names[nameOff:nameOff+nameLen]
	vic      uint16 // index into Index.vicinity
	nameLen  uint8
	kind     kind
}

// Index is the loaded, immutable offline data set with its spatial index. It
// implements places.Finder and is safe for concurrent use.
type Index struct {
	places    []place           // sorted by placeCmp: latitude band, longitude, id, kind
	bandStart [nBands + 1]int32 // places[bandStart[b]:bandStart[b+1]] lie in band b
	names     string            // all names, concatenated
	vicinity  []string          // interned vicinity strings
}

var _ places.Finder = (*Index)(nil)

// Len returns the number of places in the index.
func (x *Index) Len() int { return len(x.places) }

func bandOf(latE5 int32) int {
	return min(int(latE5+90e5)/bandE5, nBands-1)
}

// statusInvalidRequest is the legacy API status for a query outside the
// documented ranges (places.Query is validated by the caller, so this is a
// safety net).
const statusInvalidRequest = "INVALID_REQUEST"

// Nearby answers q. The search takes microseconds and never blocks, so ctx
// is not consulted. A query with coordinates out of range or a radius that
// is not positive gets an INVALID_REQUEST response; the error is always nil.
// A bound outside 1..places.MaxBound means places.MaxBound.
func (x *Index) Nearby(_ context.Context, q places.Query) (*places.Response, error) {
	if !(q.Lat >= -90 && q.Lat <= 90 && q.Lng >= -180 && q.Lng <= 180 && q.RadiusM > 0) {
		return places.ErrorResponse(statusInvalidRequest, "lat, lng or radius out of range"), nil
	}
	bound := q.Bound
	if bound < 1 || bound > places.MaxBound {
		bound = places.MaxBound
	}
	top := topK{x: x, c: make([]cand, 0, bound), k: bound}
	x.search(q.Lat, q.Lng, q.RadiusM, &top)
	if len(top.c) == 0 {
		return &places.Response{
			Status:           places.StatusZeroResults,
			HTMLAttributions: []json.RawMessage{},
			Results:          []json.RawMessage{},
		}, nil
	}
	resp := &places.Response{
		Status:           places.StatusOK,
		HTMLAttributions: []json.RawMessage{creditGeoNames},
		Results:          make([]json.RawMessage, len(top.c)),
	}
	buf := make([]byte, 0, 640*len(top.c))
	airport := false
	for i, c := range top.c {
		p := &x.places[c.i]
		start := len(buf)
		buf = x.appendResult(buf, p)
		resp.Results[i] = buf[start:len(buf):len(buf)]
		airport = airport || p.kind == kindAirport
	}
	if airport {
		resp.HTMLAttributions = append(resp.HTMLAttributions, creditOpenFlights)
	}
	return resp, nil
}

// search offers every place within radiusM metres of (lat, lng) to top.
func (x *Index) search(lat, lng, radiusM float64, top *topK) {
	const deg = 180 / math.Pi
	r := radiusM / earthRadiusM // angular radius
	latMin, latMax := lat-r*deg, lat+r*deg
	// Longitude half-width of the circle's bounding box; the whole circle of
	// latitudes when the circle contains a pole.
	dlon := 180.0
	if latMin > -90 && latMax < 90 {
		if s := math.Sin(r) / math.Cos(lat/deg); s < 1 {
			dlon = math.Asin(s) * deg
		}
	}
	// Widen the box by a little more than the data's resolution so that
	// rounding never drops a point; the distance test decides.
	const margin = 2
	latMinE5 := max(int32(math.Floor(latMin*1e5))-margin, -90e5)
	latMaxE5 := min(int32(math.Ceil(latMax*1e5))+margin, 90e5)
	var lons [2][2]int32
	nl := 1
	if dlon >= 180 {
		lons[0] = [2]int32{-180e5, 180e5}
	} else {
		lo := int32(math.Floor((lng-dlon)*1e5)) - margin
		hi := int32(math.Ceil((lng+dlon)*1e5)) + margin
		switch {
		case lo < -180e5: // crosses the antimeridian westwards
			lons[0], lons[1], nl = [2]int32{lo + 360e5, 180e5}, [2]int32{-180e5, hi}, 2
		case hi > 180e5: // crosses it eastwards
			lons[0], lons[1], nl = [2]int32{lo, 180e5}, [2]int32{-180e5, hi - 360e5}, 2
		default:
			lons[0] = [2]int32{lo, hi}
		}
	}

	h := newHaversine(lat, lng)
	hMax := havLimit(radiusM)
	for b := bandOf(latMinE5); b <= bandOf(latMaxE5); b++ {
		band := x.places[x.bandStart[b]:x.bandStart[b+1]]
		for _, lr := range lons[:nl] {
			// first place with lon >= lr[0]
			i, j := 0, len(band)
			for i < j {
				m := int(uint(i+j) >> 1)
				if band[m].lon < lr[0] {
					i = m + 1
				} else {
					j = m
				}
			}
			for ; i < len(band) && band[i].lon <= lr[1]; i++ {
				p := &band[i]
				if p.lat < latMinE5 || p.lat > latMaxE5 {
					continue
				}
				if a := h.havE5(p.lat, p.lon); a <= hMax {
					top.offer(int32(int(x.bandStart[b])+i), a)
				}
			}
		}
	}
}

// haversine holds the precomputed terms for distances from one point.
type haversine struct {
	phi1, lam1, cosPhi1 float64 // radians
}

func newHaversine(lat, lng float64) haversine {
	phi := lat * math.Pi / 180
	return haversine{phi1: phi, lam1: lng * math.Pi / 180, cosPhi1: math.Cos(phi)}
}

// hav returns the haversine of the central angle θ to (lat, lng) in
// degrees, hav θ = sin²(θ/2), in [0, 1]. It grows with the distance, so it
// serves to compare distances without the arcsine.
func (h haversine) hav(lat, lng float64) float64 {
	phi2 := lat * math.Pi / 180
	sdp := math.Sin((phi2 - h.phi1) / 2)
	sdl := math.Sin((lng*math.Pi/180 - h.lam1) / 2)
	return min(sdp*sdp+h.cosPhi1*math.Cos(phi2)*sdl*sdl, 1)
}

// havE5 is hav for coordinates in units of 1e-5 degree.
func (h haversine) havE5(latE5, lngE5 int32) float64 {
	return h.hav(float64(latE5)/1e5, float64(lngE5)/1e5)
}

// havLimit returns the hav of the central angle of a distance in metres:
// a point is within radiusM iff its hav is at most havLimit(radiusM).
func havLimit(radiusM float64) float64 {
	theta := radiusM / earthRadiusM
	if theta >= math.Pi {
		return 1
	}
	s := math.Sin(theta / 2)
	return s * s
}

// havToMetres converts a hav back to a distance in metres.
func havToMetres(a float64) float64 {
	return 2 * earthRadiusM * math.Asin(math.Sqrt(a))
}

// distance returns the great-circle distance in metres between two points
// given in degrees, by the haversine formula.
func distance(lat1, lng1, lat2, lng2 float64) float64 {
	return havToMetres(newHaversine(lat1, lng1).hav(lat2, lng2))
}

// cand is a place within range: its index in Index.places and the hav of
// its distance.
type cand struct {
	i   int32
	hav float64
}

// topK keeps the k best-ranked candidates offered, best first.
type topK struct {
	x *Index
	c []cand // sorted by rank, len(c) <= k
	k int
}

// before reports whether a ranks before b: see the package doc.
func (t *topK) before(a, b cand) bool {
	pa, pb := &t.x.places[a.i], &t.x.places[b.i]
	if pa.kind != pb.kind {
		return pa.kind < pb.kind
	}
	if pa.pop != pb.pop {
		return pa.pop > pb.pop
	}
	if a.hav != b.hav {
		return a.hav < b.hav
	}
	return pa.id < pb.id
}

func (t *topK) offer(i int32, hav float64) {
	c := cand{i, hav}
	n := len(t.c)
	if n == t.k {
		if !t.before(c, t.c[n-1]) {
			return
		}
		n--
	} else {
		t.c = append(t.c, cand{})
	}
	for n > 0 && t.before(c, t.c[n-1]) {
		t.c[n] = t.c[n-1]
		n--
	}
	t.c[n] = c
}
