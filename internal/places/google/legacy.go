package google

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"herd/internal/places"
)

// Legacy is the "google" provider: Google's legacy Nearby Search API, whose
// answer already has the format WHATSAT replies with. It is safe for
// concurrent use.
type Legacy struct {
	c client
}

var _ places.Finder = (*Legacy)(nil)

// NewLegacy returns the legacy Nearby Search provider. An empty
// opts.Endpoint means LegacyEndpoint.
func NewLegacy(opts Options) *Legacy {
	return &Legacy{c: newClient(opts, LegacyEndpoint)}
}

// Nearby sends GET endpoint?key=KEY&location=LAT,LNG&radius=METRES (query
// parameters already in the endpoint URL are kept) and returns Google's
// answer as places.Parse reads it, all results included. Google's own
// non-OK statuses (OVER_QUERY_LIMIT, REQUEST_DENIED, ...) come back as a
// Response with a nil error. Without a key it answers REQUEST_DENIED at
// once. An HTTP status other than 200, a body that is not a legacy
// response, a body over MaxBodyBytes, or no answer within the timeout is an
// error, which never contains the key.
func (l *Legacy) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	if l.c.key == "" {
		return noKey(), nil
	}
	u, err := url.Parse(l.c.endpoint)
	if err != nil {
		return nil, fmt.Errorf("google: endpoint: %w", l.c.redact(err))
	}
	params := u.Query()
	params.Set("location", formatCoord(q.Lat)+","+formatCoord(q.Lng))
	params.Set("radius", formatCoord(radiusMetres(q.RadiusM)))
	params.Set("key", l.c.key)
	u.RawQuery = params.Encode()

	ctx, cancel := context.WithTimeout(ctx, l.c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("google: %w", l.c.redact(err))
	}
	req.Header.Set("Accept", "application/json")

	code, body, err := l.c.do(req)
	if err != nil {
		return nil, fmt.Errorf("google: nearby search: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("google: nearby search: %w", httpStatusError(code))
	}
	r, err := places.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("google: nearby search: %w", err)
	}
	r.ErrorMessage = l.c.scrub(r.ErrorMessage)
	return r, nil
}
