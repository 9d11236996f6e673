// Package places answers "what is near this point?" for WHATSAT. A Finder is
// one places provider (offline gazetteer, Google legacy Nearby Search, Google
// Places API (New)); every provider answers with a Response in the legacy
// Nearby Search shape, and Render prints it in the layout Google itself uses.
package places

import (
	"context"
	"encoding/json"
	"errors"

	"herd/internal/protocol"
)

// MaxBound is the largest number of results a WHATSAT may ask for, and the
// number a provider is asked for when results are cached and cut later.
const MaxBound = protocol.MaxBound

// Query is one nearby search.
type Query struct {
	Lat, Lng float64 // decimal degrees, already validated
	RadiusM  float64 // search radius in metres, 0 < RadiusM <= 50000
	Bound    int     // the most results wanted, 1..MaxBound
}

// Finder is a places provider.
//
// Nearby returns the provider's answer in the legacy Nearby Search shape. A
// provider that was reached and answered with a non-OK status (for example
// Google's OVER_QUERY_LIMIT) returns a Response with that Status and a nil
// error. A provider that could not be reached or answered garbage returns a
// non-nil error; callers turn it into a response with ErrorResponse.
// Implementations must honour ctx's deadline and be safe for concurrent use.
// They may return more than q.Bound results; callers cut with Render.
type Finder interface {
	Nearby(ctx context.Context, q Query) (*Response, error)
}

// Response is a Nearby Search answer in the legacy Google format. Results are
// kept as raw JSON so that fields herd does not know survive unchanged.
type Response struct {
	Status           string            // "OK", "ZERO_RESULTS", "REQUEST_DENIED", ...
	ErrorMessage     string            // present when Status is neither OK nor ZERO_RESULTS
	HTMLAttributions []json.RawMessage // usually empty; data credits for offline data
	NextPageToken    string            // kept as the provider sent it
	Results          []json.RawMessage // each one JSON object
	// Extra holds any other top-level members the provider sent, verbatim.
	Extra map[string]json.RawMessage
}

// Status values of the legacy API that herd produces itself.
const (
	StatusOK             = "OK"
	StatusZeroResults    = "ZERO_RESULTS"
	StatusUnknownError   = "UNKNOWN_ERROR"
	StatusInvalidRequest = "INVALID_REQUEST"
	StatusRequestDenied  = "REQUEST_DENIED"
	StatusOverQueryLimit = "OVER_QUERY_LIMIT"
)

// ErrorResponse is the answer sent to a client when the provider failed:
// empty results, the given status (UNKNOWN_ERROR when empty) and a message.
func ErrorResponse(status, message string) *Response {
	if status == "" {
		status = StatusUnknownError
	}
	return &Response{Status: status, ErrorMessage: message}
}

// ErrNoKey says that GOOGLE_PLACES_API_KEY is unset. The Google providers
// do not return it as an error: they answer with status REQUEST_DENIED and
// its text as the error_message, so a client sees why.
var ErrNoKey = errors.New("GOOGLE_PLACES_API_KEY is not set")
