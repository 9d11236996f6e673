package cache

import (
	"container/list"
	"math"
	"strconv"
	"sync"
	"time"

	"herd/internal/places"
)

// key identifies a cached answer: the exact point and radius of a query. The
// bound is not part of it, because the upstream is always asked for
// places.MaxBound results and callers cut the answer themselves.
type key struct {
	lat, lng, radiusM float64
}

func keyOf(q places.Query) key {
	return key{lat: q.Lat, lng: q.Lng, radiusM: q.RadiusM}
}

// storable reports whether k can be found again once stored: a NaN field
// never compares equal, so such an entry would only take up room.
func (k key) storable() bool {
	return !math.IsNaN(k.lat) && !math.IsNaN(k.lng) && !math.IsNaN(k.radiusM)
}

// String returns the key in the form singleflight needs; 'g' with precision
// -1 is the shortest text that parses back to the same float64.
func (k key) String() string {
	b := make([]byte, 0, 64)
	b = strconv.AppendFloat(b, k.lat, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, k.lng, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, k.radiusM, 'g', -1, 64)
	return string(b)
}

// entry is one cached answer. resp is never mutated after it is stored.
type entry struct {
	key     key
	resp    *places.Response
	size    int64     // sizeOf(resp); immutable
	expires time.Time // the entry is fresh while now is before expires
}

// entryOverhead approximates what an entry costs besides its answer's
// bytes: the entry, its list element, its map slot and the Response.
const entryOverhead = 256

// sizeOf is what an answer counts against the byte bound.
func sizeOf(r *places.Response) int64 {
	n := int64(entryOverhead + len(r.Status) + len(r.ErrorMessage) + len(r.NextPageToken))
	for _, v := range r.HTMLAttributions {
		n += int64(len(v)) + 24
	}
	for _, v := range r.Results {
		n += int64(len(v)) + 24
	}
	for k, v := range r.Extra {
		n += int64(len(k)+len(v)) + 48
	}
	return n
}

// store is a size-bounded LRU map of answers with a fixed time to live,
// bounded both in entries and in bytes. Expired entries are dropped lazily,
// when a lookup finds them or when they reach the least recently used end
// while making room.
type store struct {
	ttl        time.Duration // > 0; immutable
	maxEntries int           // > 0; immutable
	maxBytes   int64         // > 0; immutable

	mu    sync.Mutex
	items map[key]*list.Element // guarded by mu; values are *entry
	lru   *list.List            // guarded by mu; front is the most recently used
	bytes int64                 // guarded by mu: sum of the entries' sizes
}

func newStore(ttl time.Duration, maxEntries int, maxBytes int64) *store {
	return &store{
		ttl:        ttl,
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		items:      make(map[key]*list.Element),
		lru:        list.New(),
	}
}

// get returns the fresh answer for k, if any, and marks it recently used.
// expired reports whether a stale entry for k was found and dropped.
func (s *store) get(k key, now time.Time) (resp *places.Response, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		s.removeLocked(el)
		return nil, true
	}
	s.lru.MoveToFront(el)
	return e.resp, false
}

// put stores resp for k, replacing any older answer, and returns how many
// entries it evicted to stay within maxEntries and maxBytes and how many of
// those had already expired. An answer larger than maxBytes is not stored.
func (s *store) put(k key, resp *places.Response, now time.Time) (evicted, expired int) {
	size := sizeOf(resp)
	if !k.storable() || size > s.maxBytes {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp := now.Add(s.ttl)
	if el, ok := s.items[k]; ok {
		// Two flights for one key can both finish (the second started just
		// after the first left singleflight); the later answer wins.
		s.removeLocked(el)
	}
	s.items[k] = s.lru.PushFront(&entry{key: k, resp: resp, size: size, expires: exp})
	s.bytes += size
	for s.lru.Len() > s.maxEntries || s.bytes > s.maxBytes {
		el := s.lru.Back()
		if !now.Before(el.Value.(*entry).expires) {
			expired++
		} else {
			evicted++
		}
		s.removeLocked(el)
	}
	return evicted, expired
}

// len returns the number of entries held, expired ones included, and
// their bytes.
func (s *store) len() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len(), s.bytes
}

func (s *store) removeLocked(el *list.Element) {
	s.lru.Remove(el)
	e := el.Value.(*entry)
	delete(s.items, e.key)
	s.bytes -= e.size
}
