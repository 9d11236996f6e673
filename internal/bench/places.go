package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"herd/internal/places"
)

// sampleResults is how many results the sample Nearby Search answer holds:
// the most a Google page returns.
const sampleResults = 20

// The sample answer is made once; it is read-only afterwards.
var (
	sampleOnce    sync.Once
	sampleResp    []json.RawMessage // each result, compact
	sampleIndents [sampleResults + 1][]byte
)

func makeSample() {
	type latLng struct {
		Lat float64 `json:"lat"`
		Lng float64 `json:"lng"`
	}
	type result struct {
		BusinessStatus string `json:"business_status"`
		Geometry       struct {
			Location latLng `json:"location"`
			Viewport struct {
				Northeast latLng `json:"northeast"`
				Southwest latLng `json:"southwest"`
			} `json:"viewport"`
		} `json:"geometry"`
		Icon     string `json:"icon"`
		Name     string `json:"name"`
		PlaceID  string `json:"place_id"`
		PlusCode struct {
			CompoundCode string `json:"compound_code"`
			GlobalCode   string `json:"global_code"`
		} `json:"plus_code"`
		Rating           float64  `json:"rating"`
		Reference        string   `json:"reference"`
		Scope            string   `json:"scope"`
		Types            []string `json:"types"`
		UserRatingsTotal int      `json:"user_ratings_total"`
		Vicinity         string   `json:"vicinity"`
	}
	for i := range sampleResults {
		var r result
		lat, lng := 34.068930+float64(i)*0.00037, -118.445127+float64(i%7)*0.00041
		r.BusinessStatus = "OPERATIONAL"
		r.Geometry.Location = latLng{lat, lng}
		r.Geometry.Viewport.Northeast = latLng{lat + 0.0013498, lng + 0.0013498}
		r.Geometry.Viewport.Southwest = latLng{lat - 0.0013498, lng - 0.0013498}
		r.Icon = "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/generic_business-71.png"
		r.Name = fmt.Sprintf("Bench Place %02d", i+1)
		r.PlaceID = fmt.Sprintf("ChIJbench%02dplaceidXXXXXXXXXXXX", i+1)
		r.PlusCode.CompoundCode = "3H9V+XX Los Angeles, California"
		r.PlusCode.GlobalCode = "85633H9V+XX"
		r.Rating = 4.1 + float64(i%9)/10
		r.Reference = r.PlaceID
		r.Scope = "GOOGLE"
		r.Types = []string{"point_of_interest", "establishment"}
		r.UserRatingsTotal = 100 + 37*i
		r.Vicinity = fmt.Sprintf("%d Westwood Plaza, Los Angeles", 100+i)
		b, _ := json.Marshal(r)
		sampleResp = append(sampleResp, b)
	}
	for n := 0; n <= sampleResults; n++ {
		doc := map[string]any{"html_attributions": []any{}, "results": sampleResp[:n], "status": "OK"}
		sampleIndents[n], _ = json.MarshalIndent(doc, "", "   ")
	}
}

// SamplePlacesJSON returns a legacy Nearby Search answer (status OK) with
// the first n of its 20 results (n <= 0 or n > 20: all of them), indented
// without a trailing newline. It is the fixed answer of FixedFinder,
// FakePlaces and, by default, Reference. The caller must not modify it.
func SamplePlacesJSON(n int) []byte {
	sampleOnce.Do(makeSample)
	if n <= 0 || n > sampleResults {
		n = sampleResults
	}
	return sampleIndents[n]
}

// FixedFinder is a places.Finder that answers every query at once with the
// same response: the 20 results of SamplePlacesJSON. It makes no network
// call and keeps no cache, so a WHATSAT run measures the herd alone.
type FixedFinder struct {
	calls atomic.Int64
	resp  places.Response
}

var _ places.Finder = (*FixedFinder)(nil)

// NewFixedFinder returns a FixedFinder.
func NewFixedFinder() *FixedFinder {
	sampleOnce.Do(makeSample)
	return &FixedFinder{resp: places.Response{Status: places.StatusOK, Results: sampleResp}}
}

// Nearby returns a copy of the fixed response.
func (f *FixedFinder) Nearby(ctx context.Context, _ places.Query) (*places.Response, error) {
	f.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := f.resp
	return &r, nil
}

// Calls returns how many queries f has answered.
func (f *FixedFinder) Calls() int64 { return f.calls.Load() }

// FakePlaces is a fake Google legacy Nearby Search endpoint on a free
// 127.0.0.1 port: every GET, whatever its path and query, is answered with
// SamplePlacesJSON(20). Point a herd's places endpoint at URL to measure it
// with its real provider and cache but without Google.
type FakePlaces struct {
	// URL is the endpoint, "http://127.0.0.1:PORT/maps/api/place/nearbysearch/json".
	URL string

	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
	requests atomic.Int64
}

// StartFakePlaces starts a FakePlaces endpoint.
func StartFakePlaces() (*FakePlaces, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake places endpoint: %w", err)
	}
	f := &FakePlaces{
		URL:  "http://" + ln.Addr().String() + "/maps/api/place/nearbysearch/json",
		ln:   ln,
		done: make(chan struct{}),
	}
	body := append(SamplePlacesJSON(0), '\n')
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.requests.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write(body)
	})}
	go func() {
		defer close(f.done)
		f.srv.Serve(ln)
	}()
	return f, nil
}

// Requests returns how many requests the endpoint has answered.
func (f *FakePlaces) Requests() int64 { return f.requests.Load() }

// Close stops the endpoint and closes its connections.
func (f *FakePlaces) Close() error {
	err := f.srv.Close()
	<-f.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
