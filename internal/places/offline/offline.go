// Package offline is herd's default places provider: it answers nearby
// searches from public gazetteer data embedded in the binary, with no network
// and no API key, in the legacy Google Nearby Search format.
//
// The data are the GeoNames "cities500" populated places (about 200 000 cities,
// towns, villages and neighbourhoods, CC BY 4.0) and, in a separate file, the
// OpenFlights airports (about 7 700, ODbL 1.0); see data/ATTRIBUTION.md. The
// generator in ./gen produces the embedded files from the raw downloads.
//
// # Search
//
// A query finds every place whose great-circle (haversine, mean Earth radius
// 6 371 000 m) distance from the query point is at most the radius. It is
// correct across the antimeridian and near the poles (a circle that contains a
// pole covers every longitude).
//
// # Ranking
//
// Results are ranked by prominence, like Google's default ranking, with this
// total order:
//
//  1. the kind of place, from most to least prominent: national capital
//     (GeoNames PPLC); seat of a first-order division or of government (PPLA,
//     PPLG); seat of a second-order division (PPLA2); seat of a third- to
//     fifth-order division (PPLA3, PPLA4, PPLA5); any other populated place
//     (PPL, PPLL, PPLF, ...); airport; neighbourhood (PPLX);
//  2. then larger population first (unknown population counts as 0);
//  3. then nearer first;
//  4. then smaller id first, so the order never depends on the index layout.
//
// At most the query's bound (clamped to 1..places.MaxBound) results are
// returned.
//
// # Results
//
// Each result is a legacy Nearby Search result object with its keys in
// alphabetical order: geometry (location and a viewport), icon,
// icon_background_color, icon_mask_base_uri (Google's generic geocode icon),
// name, place_id and reference ("geonames:<id>" or "openflights:<id>"), scope
// ("APP", Google's value for places that an app supplies), types and vicinity.
//
// types is ["locality","political"] for populated places,
// ["neighborhood","political"] for neighbourhoods (PPLX) and
// ["airport","point_of_interest","establishment"] for airports.
//
// vicinity is the first-order administrative division and the ISO country
// code, for example "California, US", or the country code alone when the
// division's name is unknown; for airports it is the city the airport serves.
// GeoNames gives no city for a neighbourhood and herd ships no country names,
// hence this shape.
//
// The data set has points, not bounds, so the viewport is a square box around
// the point whose half-side is 1.5 km for a neighbourhood, 2 km for an
// airport, and 1 km + 15 m × √population (at most 25 km) for other places. A
// viewport that crosses the antimeridian has its north-east longitude less
// than its south-west longitude, as in Google's answers.
//
// Every OK response carries the GeoNames credit in html_attributions, and the
// OpenFlights credit as well when an airport is among the results.
package offline

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"

	"herd/internal/places"
)

//go:embed data/places.tsv.gz
var placesGz []byte

//go:embed data/airports.tsv.gz
var airportsGz []byte

// Load decodes the embedded data and builds the index, synchronously. It
// takes a few hundred milliseconds; servers use New, which loads in the
// background.
func Load() (*Index, error) {
	b := newBuilder()
	if err := b.readGz(bytes.NewReader(placesGz), sourceGeoNames); err != nil {
		return nil, fmt.Errorf("offline places: load places: %w", err)
	}
	if err := b.readGz(bytes.NewReader(airportsGz), sourceOpenFlights); err != nil {
		return nil, fmt.Errorf("offline places: load airports: %w", err)
	}
	return b.build()
}

// Finder is the offline places provider. It implements places.Finder and is
// safe for concurrent use.
type Finder struct {
	done chan struct{} // closed when loading has finished
	idx  *Index        // set before done is closed; nil when loading failed
	err  error         // set before done is closed
}

var _ places.Finder = (*Finder)(nil)

// New returns a Finder at once and loads the embedded data in a background
// goroutine, which ends when loading is done. Nearby waits for the load.
func New() *Finder {
	return newFinder(Load)
}

func newFinder(load func() (*Index, error)) *Finder {
	f := &Finder{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.idx, f.err = load()
	}()
	return f
}

// Index waits until the data are loaded and returns the index, or the load's
// error. It returns ctx's error if ctx ends first.
func (f *Finder) Index(ctx context.Context) (*Index, error) {
	select {
	case <-f.done:
	default:
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("offline places: still loading: %w", ctx.Err())
		}
	}
	return f.idx, f.err
}

// Nearby answers q from the embedded data, waiting for the background load
// to finish first. It returns an error only when ctx ends before the data
// are loaded or when loading failed.
func (f *Finder) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	idx, err := f.Index(ctx)
	if err != nil {
		return nil, err
	}
	return idx.Nearby(ctx, q)
}
