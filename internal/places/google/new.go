package google

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"herd/internal/places"
)

// FieldMask is the X-Goog-FieldMask sent to Places API (New): exactly the
// Place fields that PlacesNew maps onto the legacy format.
const FieldMask = "places.id,places.displayName,places.location,places.viewport," +
	"places.shortFormattedAddress,places.types,places.businessStatus,places.rating," +
	"places.userRatingCount,places.priceLevel,places.currentOpeningHours," +
	"places.plusCode,places.photos,places.iconBackgroundColor,places.iconMaskBaseUri"

// PlacesNew is the "google-new" provider: Places API (New) searchNearby,
// with its answer mapped onto the legacy Nearby Search format as the
// package documentation describes. It is safe for concurrent use.
type PlacesNew struct {
	c client
}

var _ places.Finder = (*PlacesNew)(nil)

// NewPlacesNew returns the Places API (New) provider. An empty
// opts.Endpoint means NewEndpoint.
func NewPlacesNew(opts Options) *PlacesNew {
	return &PlacesNew{c: newClient(opts, NewEndpoint)}
}

// Nearby sends POST endpoint with the key in X-Goog-Api-Key, FieldMask in
// X-Goog-FieldMask, and a body asking for q.Bound places (1..20; MaxBound
// when out of range) in the circle of q.RadiusM metres around q's point. It
// returns the answer mapped onto the legacy format: OK, or ZERO_RESULTS for
// no places. A Google error body on an HTTP 4xx becomes a Response with the
// mapped legacy status and Google's message, and a nil error. Without a key
// it answers REQUEST_DENIED at once. No answer within the timeout, any other
// HTTP status, a body that is not the expected JSON, or a body over
// MaxBodyBytes is an error, which never contains the key.
func (p *PlacesNew) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	if p.c.key == "" {
		return noKey(), nil
	}
	reqBody, err := json.Marshal(newSearchRequest(q))
	if err != nil {
		return nil, fmt.Errorf("google-new: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, p.c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.c.endpoint, bytes.NewReader(reqBody))
	if err != nil {
		return nil, fmt.Errorf("google-new: %w", p.c.redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Goog-Api-Key", p.c.key)
	req.Header.Set("X-Goog-FieldMask", FieldMask)

	code, body, err := p.c.do(req)
	if err != nil {
		return nil, fmt.Errorf("google-new: search nearby: %w", err)
	}
	if code < 200 || code > 299 {
		e := decodeRPCError(body)
		if e != nil && code >= 400 && code <= 499 {
			return places.ErrorResponse(legacyStatus(e.Status), p.c.scrub(e.Message)), nil
		}
		err := httpStatusError(code)
		if e != nil {
			err = fmt.Errorf("%w: %s: %s", err, e.Status, p.c.scrub(e.Message))
		}
		return nil, fmt.Errorf("google-new: search nearby: %w", err)
	}

	var sr searchResponse
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("google-new: search nearby: response is not a JSON object")
	}
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, fmt.Errorf("google-new: search nearby: bad response JSON: %w", err)
	}
	if sr.Error != nil {
		return places.ErrorResponse(legacyStatus(sr.Error.Status), p.c.scrub(sr.Error.Message)), nil
	}
	r := &places.Response{Status: places.StatusZeroResults}
	for i, pl := range sr.Places {
		res, err := json.Marshal(pl.legacy())
		if err != nil {
			return nil, fmt.Errorf("google-new: search nearby: place %d: %w", i, err)
		}
		r.Results = append(r.Results, res)
	}
	if len(r.Results) > 0 {
		r.Status = places.StatusOK
	}
	return r, nil
}

// searchRequest is the body of a searchNearby request.
type searchRequest struct {
	MaxResultCount      int `json:"maxResultCount"`
	LocationRestriction struct {
		Circle struct {
			Center struct {
				Latitude  float64 `json:"latitude"`
				Longitude float64 `json:"longitude"`
			} `json:"center"`
			Radius float64 `json:"radius"` // metres
		} `json:"circle"`
	} `json:"locationRestriction"`
}

func newSearchRequest(q places.Query) searchRequest {
	var r searchRequest
	r.MaxResultCount = q.Bound
	if r.MaxResultCount < 1 || r.MaxResultCount > places.MaxBound {
		r.MaxResultCount = places.MaxBound
	}
	r.LocationRestriction.Circle.Center.Latitude = q.Lat
	r.LocationRestriction.Circle.Center.Longitude = q.Lng
	r.LocationRestriction.Circle.Radius = radiusMetres(q.RadiusM)
	return r
}

// rpcError is Google's error body: {"error":{"code":…,"message":…,"status":…}}.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// decodeRPCError returns the error in body, or nil if body is not one.
func decodeRPCError(body []byte) *rpcError {
	var wrapper struct {
		Error *rpcError `json:"error"`
	}
	if json.Unmarshal(body, &wrapper) != nil || wrapper.Error == nil {
		return nil
	}
	if wrapper.Error.Status == "" && wrapper.Error.Message == "" {
		return nil
	}
	return wrapper.Error
}

// legacyStatus maps a google.rpc status name onto a legacy Nearby Search status.
func legacyStatus(rpcStatus string) string {
	switch rpcStatus {
	case "INVALID_ARGUMENT":
		return "INVALID_REQUEST"
	case "PERMISSION_DENIED", "UNAUTHENTICATED":
		return "REQUEST_DENIED"
	case "RESOURCE_EXHAUSTED":
		return "OVER_QUERY_LIMIT"
	}
	return places.StatusUnknownError
}

// searchResponse is a searchNearby answer, reduced to what FieldMask asks for.
type searchResponse struct {
	Places []newPlace `json:"places"`
	Error  *rpcError  `json:"error"`
}

// newPlace is a Places API (New) Place, the fields of FieldMask only.
// Numbers stay json.Number so that they are copied digit for digit.
type newPlace struct {
	ID                    string           `json:"id"`
	DisplayName           *localizedText   `json:"displayName"`
	Location              *newLatLng       `json:"location"`
	Viewport              *newViewport     `json:"viewport"`
	ShortFormattedAddress string           `json:"shortFormattedAddress"`
	Types                 []string         `json:"types"`
	BusinessStatus        string           `json:"businessStatus"`
	Rating                json.Number      `json:"rating"`
	UserRatingCount       json.Number      `json:"userRatingCount"`
	PriceLevel            string           `json:"priceLevel"`
	CurrentOpeningHours   *newOpeningHours `json:"currentOpeningHours"`
	PlusCode              *newPlusCode     `json:"plusCode"`
	Photos                []newPhoto       `json:"photos"`
	IconBackgroundColor   string           `json:"iconBackgroundColor"`
	IconMaskBaseURI       string           `json:"iconMaskBaseUri"`
}

type localizedText struct {
	Text string `json:"text"`
}

type newLatLng struct {
	Latitude  json.Number `json:"latitude"`
	Longitude json.Number `json:"longitude"`
}

type newViewport struct {
	Low  *newLatLng `json:"low"`
	High *newLatLng `json:"high"`
}

type newOpeningHours struct {
	OpenNow *bool `json:"openNow"`
}

type newPlusCode struct {
	GlobalCode   string `json:"globalCode"`
	CompoundCode string `json:"compoundCode"`
}

type newPhoto struct {
	Name               string              `json:"name"`
	WidthPx            json.Number         `json:"widthPx"`
	HeightPx           json.Number         `json:"heightPx"`
	AuthorAttributions []authorAttribution `json:"authorAttributions"`
}

type authorAttribution struct {
	DisplayName string `json:"displayName"`
	URI         string `json:"uri"`
}

// legacyResult is one legacy Nearby Search result. Its fields are in
// alphabetical order of their JSON names, the order Google prints them in.
type legacyResult struct {
	BusinessStatus      string          `json:"business_status,omitempty"`
	Geometry            *legacyGeometry `json:"geometry,omitempty"`
	Icon                string          `json:"icon,omitempty"`
	IconBackgroundColor string          `json:"icon_background_color,omitempty"`
	IconMaskBaseURI     string          `json:"icon_mask_base_uri,omitempty"`
	Name                string          `json:"name,omitempty"`
	OpeningHours        *legacyHours    `json:"opening_hours,omitempty"`
	Photos              []legacyPhoto   `json:"photos,omitempty"`
	PlaceID             string          `json:"place_id,omitempty"`
	PlusCode            *legacyPlusCode `json:"plus_code,omitempty"`
	PriceLevel          *int            `json:"price_level,omitempty"`
	Rating              json.Number     `json:"rating,omitempty"`
	Reference           string          `json:"reference,omitempty"`
	Scope               string          `json:"scope"`
	Types               []string        `json:"types,omitempty"`
	UserRatingsTotal    json.Number     `json:"user_ratings_total,omitempty"`
	Vicinity            string          `json:"vicinity,omitempty"`
}

type legacyGeometry struct {
	Location *legacyLatLng   `json:"location,omitempty"`
	Viewport *legacyViewport `json:"viewport,omitempty"`
}

type legacyLatLng struct {
	Lat json.Number `json:"lat"`
	Lng json.Number `json:"lng"`
}

type legacyViewport struct {
	Northeast *legacyLatLng `json:"northeast,omitempty"`
	Southwest *legacyLatLng `json:"southwest,omitempty"`
}

type legacyHours struct {
	OpenNow bool `json:"open_now"`
}

type legacyPhoto struct {
	Height           json.Number `json:"height,omitempty"`
	HTMLAttributions []string    `json:"html_attributions"`
	PhotoReference   string      `json:"photo_reference,omitempty"`
	Width            json.Number `json:"width,omitempty"`
}

type legacyPlusCode struct {
	CompoundCode string `json:"compound_code,omitempty"`
	GlobalCode   string `json:"global_code,omitempty"`
}

// priceLevels maps the Places API (New) PriceLevel enum onto legacy 0..4.
var priceLevels = map[string]int{
	"PRICE_LEVEL_FREE":           0,
	"PRICE_LEVEL_INEXPENSIVE":    1,
	"PRICE_LEVEL_MODERATE":       2,
	"PRICE_LEVEL_EXPENSIVE":      3,
	"PRICE_LEVEL_VERY_EXPENSIVE": 4,
}

// legacy maps a Place onto a legacy result (see the package documentation).
func (p *newPlace) legacy() legacyResult {
	r := legacyResult{
		IconBackgroundColor: p.IconBackgroundColor,
		IconMaskBaseURI:     p.IconMaskBaseURI,
		PlaceID:             p.ID,
		Rating:              p.Rating,
		Reference:           p.ID,
		Scope:               "GOOGLE",
		Types:               p.Types,
		UserRatingsTotal:    p.UserRatingCount,
		Vicinity:            p.ShortFormattedAddress,
	}
	if p.BusinessStatus != "BUSINESS_STATUS_UNSPECIFIED" {
		r.BusinessStatus = p.BusinessStatus
	}
	if p.Location != nil || p.Viewport != nil {
		r.Geometry = &legacyGeometry{Location: p.Location.legacy()}
		if p.Viewport != nil && (p.Viewport.Low != nil || p.Viewport.High != nil) {
			r.Geometry.Viewport = &legacyViewport{
				Northeast: p.Viewport.High.legacy(),
				Southwest: p.Viewport.Low.legacy(),
			}
		}
		if r.Geometry.Location == nil && r.Geometry.Viewport == nil {
			r.Geometry = nil
		}
	}
	if p.IconMaskBaseURI != "" {
		r.Icon = p.IconMaskBaseURI + ".png"
	}
	if p.DisplayName != nil {
		r.Name = p.DisplayName.Text
	}
	if p.CurrentOpeningHours != nil && p.CurrentOpeningHours.OpenNow != nil {
		r.OpeningHours = &legacyHours{OpenNow: *p.CurrentOpeningHours.OpenNow}
	}
	for _, ph := range p.Photos {
		lp := legacyPhoto{
			Height:           ph.HeightPx,
			HTMLAttributions: []string{},
			PhotoReference:   ph.Name,
			Width:            ph.WidthPx,
		}
		for _, a := range ph.AuthorAttributions {
			lp.HTMLAttributions = append(lp.HTMLAttributions, a.html())
		}
		r.Photos = append(r.Photos, lp)
	}
	if p.PlusCode != nil && (p.PlusCode.CompoundCode != "" || p.PlusCode.GlobalCode != "") {
		r.PlusCode = &legacyPlusCode{CompoundCode: p.PlusCode.CompoundCode, GlobalCode: p.PlusCode.GlobalCode}
	}
	if level, ok := priceLevels[p.PriceLevel]; ok {
		r.PriceLevel = &level
	}
	return r
}

// legacy maps a LatLng; proto3 JSON leaves out a zero coordinate, so a
// missing one is 0.
func (ll *newLatLng) legacy() *legacyLatLng {
	if ll == nil {
		return nil
	}
	l := &legacyLatLng{Lat: ll.Latitude, Lng: ll.Longitude}
	if l.Lat == "" {
		l.Lat = "0"
	}
	if l.Lng == "" {
		l.Lng = "0"
	}
	return l
}

// html renders an author attribution the way the legacy API does, as a
// link to the author's page: <a href="uri">displayName</a>. The name is
// HTML-escaped; without a uri it is the bare name.
func (a authorAttribution) html() string {
	name := htmlText.Replace(a.DisplayName)
	if a.URI == "" {
		return name
	}
	return `<a href="` + htmlAttr.Replace(a.URI) + `">` + name + `</a>`
}

var (
	htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	htmlAttr = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)
