// Package cache puts a places.Finder in front of another one to protect the
// upstream provider (Google charges per call): answers are kept for a while,
// identical concurrent lookups share one upstream call, and upstream calls are
// rate limited: a lookup over the limit is answered at once with status
// OVER_QUERY_LIMIT, never queued. What the cache holds is bounded in
// entries and in bytes.
//
// A cached answer is keyed by the exact (Lat, Lng, RadiusM) of the query. The
// upstream is always asked for places.MaxBound results, so one answer serves
// every bound; callers cut it with the Response's Render, as the
// places.Finder contract allows.
package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"herd/internal/places"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultTTL             = 5 * time.Minute
	DefaultMaxEntries      = 10000
	DefaultMaxBytes        = 64 << 20
	DefaultUpstreamTimeout = 10 * time.Second
)

// RateLimitedMessage is the error_message of the OVER_QUERY_LIMIT answer
// given when the upstream rate limit allows no call now.
const RateLimitedMessage = "herd's places rate limit (places.rate_limit) is reached: try again later"

// Options configures a Cache. The zero value is usable: every zero field
// takes its default.
type Options struct {
	// TTL is how long an answer is served from the cache. Zero means
	// DefaultTTL; a negative TTL stores nothing, so lookups are only
	// deduplicated and rate limited.
	TTL time.Duration

	// MaxEntries bounds the number of answers held; the least recently used
	// one is evicted to make room. Zero means DefaultMaxEntries; a negative
	// value stores nothing, like a negative TTL.
	MaxEntries int

	// MaxBytes bounds the bytes of the answers held (their JSON, plus a
	// fixed overhead per entry); the least recently used ones are evicted
	// to make room, and an answer larger than MaxBytes is not stored.
	// Zero means DefaultMaxBytes; a negative value stores nothing.
	MaxBytes int64

	// Rate is the most upstream calls per second, on average. Zero,
	// negative or +Inf means unlimited.
	Rate float64

	// Burst is how many upstream calls may be made at once above Rate.
	// It is ignored when Rate is unlimited; zero or negative means 1.
	Burst int

	// UpstreamTimeout bounds one shared upstream lookup. Zero means DefaultUpstreamTimeout; a negative value
	// adds no timeout (the upstream Finder's own must then suffice).
	UpstreamTimeout time.Duration

	// Now tells the time for TTL expiry; nil means time.Now. The rate
	// limiter always uses the real clock (or the synctest bubble's).
	Now func() time.Time
}

// Cache is a places.Finder that answers from memory when it can and asks
// the next Finder otherwise. It is safe for concurrent use.
//
// The *places.Response values it returns are shared: the same value goes to
// every caller of a shared upstream call and to every later cache hit.
// Callers must treat them as read-only. The cache never modifies a Response,
// and the answers it stores are its own deep copies, so an upstream Finder
// that reuses its values cannot change them either.
type Cache struct {
	next    places.Finder
	store   *store        // nil: answers are not stored
	timeout time.Duration // <= 0: no timeout of our own
	now     func() time.Time
	limiter *rate.Limiter // nil: unlimited
	group   singleflight.Group
	stats   counters
}

var _ places.Finder = (*Cache)(nil)

// New returns a Cache in front of next, with opts' zero fields set to their
// defaults.
func New(next places.Finder, opts Options) *Cache {
	c := &Cache{next: next, now: opts.Now, timeout: opts.UpstreamTimeout}
	if c.now == nil {
		c.now = time.Now
	}
	if c.timeout == 0 {
		c.timeout = DefaultUpstreamTimeout
	}
	ttl, maxEntries, maxBytes := opts.TTL, opts.MaxEntries, opts.MaxBytes
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if maxEntries == 0 {
		maxEntries = DefaultMaxEntries
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if ttl > 0 && maxEntries > 0 && maxBytes > 0 {
		c.store = newStore(ttl, maxEntries, maxBytes)
	}
	if opts.Rate > 0 && !math.IsInf(opts.Rate, 1) {
		c.limiter = rate.NewLimiter(rate.Limit(opts.Rate), max(opts.Burst, 1))
	}
	return c
}

// Nearby answers q from the cache when a fresh answer for its point and
// radius is held. Otherwise it asks the next Finder for places.MaxBound
// results, sharing the call with every identical lookup already waiting, and
// stores the answer when its status is OK or ZERO_RESULTS. Errors and other
// statuses are returned as the upstream gave them and never stored.
//
// Nearby returns when ctx is done, with an error wrapping ctx.Err(), even if
// the upstream call goes on: that call is detached from the callers, bounded
// by Options.UpstreamTimeout, so that one caller giving up does not fail the
// others, and its answer is still stored for later lookups.
//
// With a rate limit, a lookup that would need an upstream call when the
// limiter has no token is answered at once, for every caller sharing it,
// with status OVER_QUERY_LIMIT and RateLimitedMessage (not stored): a
// client is never kept waiting for a token. Cache hits need no token. The
// returned Response is shared and must not be modified.
func (c *Cache) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	k := keyOf(q)
	if resp, ok := c.lookup(k); ok {
		c.stats.hits.Add(1)
		return resp, nil
	}
	c.stats.misses.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("places cache: %w", err)
	}
	c.stats.flightLookups.Add(1)
	ch := c.group.DoChan(k.String(), func() (any, error) {
		return c.fetch(ctx, k)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*places.Response), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("places cache: %w", ctx.Err())
	}
}

// lookup returns the fresh stored answer for k, if any.
func (c *Cache) lookup(k key) (*places.Response, bool) {
	if c.store == nil {
		return nil, false
	}
	resp, expired := c.store.get(k, c.now())
	if expired {
		c.stats.expired.Add(1)
	}
	return resp, resp != nil
}

// fetch is the body of one shared upstream lookup, started by the caller
// whose context is leader.
func (c *Cache) fetch(leader context.Context, k key) (*places.Response, error) {
	c.stats.flights.Add(1)
	// A flight for k may have finished between our lookup and DoChan.
	if resp, ok := c.lookup(k); ok {
		return resp, nil
	}

	// Keep leader's values (trace ids, loggers) but not its cancellation.
	ctx := context.WithoutCancel(leader)
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if c.limiter != nil && !c.limiter.Allow() {
		c.stats.rateLimited.Add(1)
		return rateLimited, nil
	}

	c.stats.upstreamCalls.Add(1)
	q := places.Query{Lat: k.lat, Lng: k.lng, RadiusM: k.radiusM, Bound: places.MaxBound}
	resp, err := c.next.Nearby(ctx, q)
	switch {
	case err != nil:
		c.stats.upstreamErrors.Add(1)
		return nil, err
	case resp == nil:
		c.stats.upstreamErrors.Add(1)
		return nil, errors.New("places cache: upstream returned neither an answer nor an error")
	case resp.Status != places.StatusOK && resp.Status != places.StatusZeroResults:
		c.stats.upstreamNotOK.Add(1)
		return resp, nil
	}
	if c.store == nil {
		return resp, nil
	}
	resp = clone(resp)
	evicted, expired := c.store.put(k, resp, c.now())
	c.stats.evictions.Add(uint64(evicted))
	c.stats.expired.Add(uint64(expired))
	return resp, nil
}

// rateLimited is the answer over the rate limit; shared, never modified.
var rateLimited = places.ErrorResponse(places.StatusOverQueryLimit, RateLimitedMessage)

// clone returns a deep copy of r, so that what the cache stores cannot be
// changed by the upstream Finder keeping and reusing its own value.
func clone(r *places.Response) *places.Response {
	out := *r
	out.HTMLAttributions = cloneRaw(r.HTMLAttributions)
	out.Results = cloneRaw(r.Results)
	if r.Extra != nil {
		out.Extra = make(map[string]json.RawMessage, len(r.Extra))
		for name, v := range r.Extra {
			out.Extra[name] = bytes.Clone(v)
		}
	}
	return &out
}

func cloneRaw(s []json.RawMessage) []json.RawMessage {
	s = slices.Clone(s)
	for i := range s {
		s[i] = bytes.Clone(s[i])
	}
	return s
}
