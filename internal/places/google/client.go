package google

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"herd/internal/places"
)

// Default endpoints, timeout and size limit.
const (
	// LegacyEndpoint is the legacy Nearby Search endpoint.
	LegacyEndpoint = "https://maps.googleapis.com/maps/api/place/nearbysearch/json"
	// NewEndpoint is the Places API (New) Nearby Search endpoint.
	NewEndpoint = "https://places.googleapis.com/v1/places:searchNearby"
	// DefaultTimeout bounds one request when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// MaxBodyBytes is the largest response body read; a longer one is an error.
	MaxBodyBytes = 4 << 20
)

// Options configures a provider. The zero value of every field but Key has a
// working default.
type Options struct {
	// Endpoint is the full URL of the API endpoint; empty means the provider's
	// Google default (LegacyEndpoint or NewEndpoint). Tests and proxies set it.
	Endpoint string
	// Key is the API key (GOOGLE_PLACES_API_KEY). Empty: every lookup
	// answers REQUEST_DENIED without a network call.
	Key string
	// Client sends the requests; nil means a client of its own with Timeout.
	// Either way, redirects are followed only to the endpoint's own scheme
	// and host (see sameHostRedirects), so the key never goes elsewhere.
	Client *http.Client
	// Timeout bounds each lookup, on top of the caller's context; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// redactedKey replaces the key wherever it would appear in an error.
const redactedKey = "REDACTED"

// client is what both providers share: where to send, with what, and how to
// keep the key out of errors. It is immutable after newClient.
type client struct {
	endpoint string
	key      string
	http     *http.Client
	timeout  time.Duration
}

func newClient(opts Options, defaultEndpoint string) client {
	c := client{endpoint: opts.Endpoint, key: opts.Key, http: opts.Client, timeout: opts.Timeout}
	if c.endpoint == "" {
		c.endpoint = defaultEndpoint
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	hc := *c.http // a copy: the caller's client is left as it was
	hc.CheckRedirect = sameHostRedirects(hc.CheckRedirect)
	c.http = &hc
	return c
}

// sameHostRedirects returns a redirect policy that refuses any redirect
// leaving the first request's scheme and host — the key travels in the
// query (legacy) or a header (Places API (New)), and net/http forwards
// custom headers to other hosts — and otherwise applies next (nil: net/http's
// default of at most 10 redirects).
func sameHostRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
			return fmt.Errorf("redirect from %s://%s to %s://%s refused: the places key goes only to the configured endpoint",
				first.Scheme, first.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// noKey is the answer when no key is configured.
func noKey() *places.Response {
	return places.ErrorResponse("REQUEST_DENIED", places.ErrNoKey.Error())
}

// do sends req and returns the status code and the body, at most
// MaxBodyBytes of it. Errors are cleaned of the key.
func (c *client) do(req *http.Request) (int, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.redact(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return resp.StatusCode, nil, c.redact(fmt.Errorf("read response body: %w", err))
	}
	if len(body) > MaxBodyBytes {
		return resp.StatusCode, nil, fmt.Errorf("response body larger than %d bytes", MaxBodyBytes)
	}
	return resp.StatusCode, body, nil
}

// redact returns err with the key removed from its text. net/http's
// *url.Error quotes the request URL, query string and all, so its URL is
// cut to scheme, host and path first; any other mention of the key (raw or
// query-escaped) is replaced by REDACTED.
func (c *client) redact(err error) error {
	if err == nil || c.key == "" {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = stripQuery(ue.URL)
	}
	msg := err.Error()
	if !strings.Contains(msg, c.key) && !strings.Contains(msg, url.QueryEscape(c.key)) {
		return err
	}
	msg = strings.ReplaceAll(msg, c.key, redactedKey)
	msg = strings.ReplaceAll(msg, url.QueryEscape(c.key), redactedKey)
	return &redactedError{msg: msg, cause: err}
}

// scrub removes the key from a message Google sent, in case Google ever
// quotes it back.
func (c *client) scrub(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, redactedKey)
}

// stripQuery drops the query and fragment of a URL string.
func stripQuery(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return raw[:i]
	}
	return raw
}

// redactedError is an error whose text had the key removed. It answers
// errors.Is for its cause (context.DeadlineExceeded, say) but does not
// unwrap to it, so the original text cannot be reached.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.cause, target) }

// formatCoord prints a coordinate in decimal degrees, as few digits as
// round-trip, never in exponent form.
func formatCoord(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// radiusMetres rounds a radius to the millimetre, so that a radius computed
// as km*1000 is sent as 1100 rather than 1100.0000000000002.
func radiusMetres(m float64) float64 {
	return math.Round(m*1000) / 1000
}

// httpStatusError describes an HTTP status that is not a usable answer.
func httpStatusError(code int) error {
	return fmt.Errorf("HTTP %d %s", code, http.StatusText(code))
}
