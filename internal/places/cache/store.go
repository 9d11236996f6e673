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
	expires time.Time // the entry is fresh while now is before expires
}

// store is a size-bounded LRU map of answers with a fixed time to live.
// Expired entries are dropped lazily, when a lookup finds them or when they
// reach the least recently used end while making room.
type store struct {
	ttl        time.Duration // > 0; immutable
	maxEntries int           // > 0; immutable

	mu    sync.Mutex
	items map[key]*list.Element // guarded by mu; values are *entry
	lru   *list.List            // guarded by mu; front is the most recently used
}

func newStore(ttl time.Duration, maxEntries int) *store {
	return &store{
		ttl:        ttl,
		maxEntries: maxEntries,
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
// entries it evicted to stay within maxEntries and how many of those had
// already expired.
func (s *store) put(k key, resp *places.Response, now time.Time) (evicted, expired int) {
	if !k.storable() {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp := now.Add(s.ttl)
	if el, ok := s.items[k]; ok {
		// Two flights for one key can both finish (the second started just
		// after the first left singleflight); the later answer wins.
		e := el.Value.(*entry)
		e.resp, e.expires = resp, exp
		s.lru.MoveToFront(el)
		return 0, 0
	}
	s.items[k] = s.lru.PushFront(&entry{key: k, resp: resp, expires: exp})
	for s.lru.Len() > s.maxEntries {
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

// len returns the number of entries held, expired ones included.
func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

func (s *store) removeLocked(el *list.Element) {
	s.lru.Remove(el)
	delete(s.items, el.Value.(*entry).key)
}
