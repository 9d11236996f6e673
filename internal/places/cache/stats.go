package cache

import "sync/atomic"

// Stats is a snapshot of a Cache's counters, for metrics. Every count is
// since New; Entries is the current number of stored answers.
type Stats struct {
	// Hits counts lookups answered from the cache.
	Hits uint64
	// Misses counts lookups that found no fresh answer in the cache. Each
	// one either started an upstream lookup, joined one (Shared), or found
	// its context already done.
	Misses uint64
	// Shared counts misses that joined an upstream lookup already in flight
	// for the same point and radius instead of starting their own.
	Shared uint64
	// UpstreamCalls counts calls made to the next Finder.
	UpstreamCalls uint64
	// UpstreamErrors counts upstream calls that failed with an error (or
	// returned neither an answer nor an error).
	UpstreamErrors uint64
	// UpstreamNotOK counts upstream answers whose status was neither OK nor
	// ZERO_RESULTS (OVER_QUERY_LIMIT, REQUEST_DENIED, ...); they are
	// returned but not stored.
	UpstreamNotOK uint64
	// RateLimited counts upstream lookups answered OVER_QUERY_LIMIT at
	// once because the rate limiter had no token.
	RateLimited uint64
	// Evictions counts fresh answers removed to stay within MaxEntries or
	// MaxBytes.
	Evictions uint64
	// Expired counts answers dropped because their TTL had passed.
	Expired uint64
	// Entries is the number of answers held now, including expired ones
	// not dropped yet, and Bytes what they count against MaxBytes.
	Entries int
	Bytes   int64
}

// counters are the live values behind Stats.
type counters struct {
	hits, misses   atomic.Uint64
	flightLookups  atomic.Uint64 // misses handed to singleflight
	flights        atomic.Uint64 // singleflight function runs
	upstreamCalls  atomic.Uint64
	upstreamErrors atomic.Uint64
	upstreamNotOK  atomic.Uint64
	rateLimited    atomic.Uint64
	evictions      atomic.Uint64
	expired        atomic.Uint64
}

// Stats returns a snapshot of c's counters. The counters are read one by
// one, so a snapshot taken under load may be off by the lookups in progress.
func (c *Cache) Stats() Stats {
	// flights is read before flightLookups: a lookup is counted before its
	// flight starts, so Shared cannot come out negative.
	flights := c.stats.flights.Load()
	s := Stats{
		Hits:           c.stats.hits.Load(),
		Misses:         c.stats.misses.Load(),
		Shared:         c.stats.flightLookups.Load() - flights,
		UpstreamCalls:  c.stats.upstreamCalls.Load(),
		UpstreamErrors: c.stats.upstreamErrors.Load(),
		UpstreamNotOK:  c.stats.upstreamNotOK.Load(),
		RateLimited:    c.stats.rateLimited.Load(),
		Evictions:      c.stats.evictions.Load(),
		Expired:        c.stats.expired.Load(),
	}
	if c.store != nil {
		s.Entries, s.Bytes = c.store.len()
	}
	return s
}
