package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"herd/internal/places"
	"herd/internal/places/cache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeFinder is a places.Finder whose behaviour each test supplies.
type fakeFinder struct {
	nearby func(ctx context.Context, q places.Query) (*places.Response, error)
	calls  atomic.Int64
}

var _ places.Finder = (*fakeFinder)(nil)

func (f *fakeFinder) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	f.calls.Add(1)
	return f.nearby(ctx, q)
}

// answering returns a fakeFinder that answers OK with n results at once.
func answering(n int) *fakeFinder {
	return &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
		return okResponse(n), nil
	}}
}

func okResponse(n int) *places.Response {
	r := &places.Response{Status: places.StatusOK, HTMLAttributions: []json.RawMessage{}}
	for i := range n {
		r.Results = append(r.Results, json.RawMessage(fmt.Sprintf(`{"name":"place %d"}`, i)))
	}
	return r
}

var ucla = places.Query{Lat: 34.068930, Lng: -118.445127, RadiusM: 10000, Bound: 5}

// at returns ucla moved east by i thousandths of a degree: a distinct key.
func at(i int) places.Query {
	q := ucla
	q.Lng += float64(i) / 1000
	return q
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func mustNearby(t *testing.T, c *cache.Cache, q places.Query) *places.Response {
	t.Helper()
	resp, err := c.Nearby(context.Background(), q)
	if err != nil {
		t.Fatalf("Nearby(%+v): %v", q, err)
	}
	return resp
}

func checkCalls(t *testing.T, f *fakeFinder, want int64) {
	t.Helper()
	if got := f.calls.Load(); got != want {
		t.Fatalf("upstream calls = %d, want %d", got, want)
	}
}

func TestConcurrentIdenticalLookupsShareOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		release := make(chan struct{})
		f := &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
			<-release
			return okResponse(20), nil
		}}
		c := cache.New(f, cache.Options{})

		resps := make([]*places.Response, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				q := ucla
				q.Bound = 1 + i%places.MaxBound // the bound is not part of the key
				resps[i], errs[i] = c.Nearby(context.Background(), q)
			})
		}
		synctest.Wait() // every caller is now waiting on the one upstream call
		checkCalls(t, f, 1)
		if s := c.Stats(); s.Misses != n || s.Shared != n-1 {
			t.Fatalf("while waiting: Stats = %+v, want %d misses, %d shared", s, n, n-1)
		}
		close(release)
		wg.Wait()

		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if resps[i] != resps[0] {
				t.Fatalf("caller %d got a different Response than caller 0", i)
			}
		}
		if len(resps[0].Results) != 20 {
			t.Fatalf("got %d results, want all 20 the upstream sent", len(resps[0].Results))
		}
		mustNearby(t, c, ucla)
		checkCalls(t, f, 1)
		want := cache.Stats{Hits: 1, Misses: n, Shared: n - 1, UpstreamCalls: 1, Entries: 1}
		if s := statsWithoutBytes(c); s != want {
			t.Fatalf("Stats = %+v, want %+v", s, want)
		}
	})
}

func TestUpstreamAskedForMaxBoundAtTheExactPoint(t *testing.T) {
	var got []places.Query
	f := &fakeFinder{nearby: func(_ context.Context, q places.Query) (*places.Response, error) {
		got = append(got, q)
		return okResponse(20), nil
	}}
	c := cache.New(f, cache.Options{})
	for _, bound := range []int{1, 5, 20} {
		q := ucla
		q.Bound = bound
		mustNearby(t, c, q)
	}
	want := ucla
	want.Bound = places.MaxBound
	if len(got) != 1 || got[0] != want {
		t.Fatalf("upstream queries = %+v, want exactly [%+v]", got, want)
	}

	// A different radius or point is a different answer.
	q := ucla
	q.RadiusM++
	mustNearby(t, c, q)
	mustNearby(t, c, at(1))
	checkCalls(t, f, 3)
}

func TestTTL(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"default", 0, cache.DefaultTTL},
		{"custom", time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			f := answering(3)
			c := cache.New(f, cache.Options{TTL: tt.ttl, Now: clock.Now})

			mustNearby(t, c, ucla)
			clock.Advance(tt.want - time.Nanosecond)
			mustNearby(t, c, ucla)
			checkCalls(t, f, 1)

			clock.Advance(time.Nanosecond)
			mustNearby(t, c, ucla)
			checkCalls(t, f, 2)
			want := cache.Stats{Hits: 1, Misses: 2, UpstreamCalls: 2, Expired: 1, Entries: 1}
			if s := statsWithoutBytes(c); s != want {
				t.Fatalf("Stats = %+v, want %+v", s, want)
			}
		})
	}
}

func TestNoStorage(t *testing.T) {
	for name, opts := range map[string]cache.Options{
		"negative TTL":        {TTL: -1},
		"negative MaxEntries": {MaxEntries: -1},
	} {
		t.Run(name, func(t *testing.T) {
			f := answering(3)
			c := cache.New(f, opts)
			mustNearby(t, c, ucla)
			mustNearby(t, c, ucla)
			checkCalls(t, f, 2)
			if s := c.Stats(); s.Entries != 0 || s.Hits != 0 {
				t.Fatalf("Stats = %+v, want nothing stored", s)
			}
		})
	}
}

func TestOnlySuccessesAreCached(t *testing.T) {
	errUpstream := errors.New("connection refused")
	tests := []struct {
		name      string
		resp      *places.Response
		err       error
		wantCalls int64
	}{
		{"OK", okResponse(2), nil, 1},
		{"ZERO_RESULTS", &places.Response{Status: places.StatusZeroResults}, nil, 1},
		{"error", nil, errUpstream, 2},
		{"no answer and no error", nil, nil, 2},
		{"OVER_QUERY_LIMIT", places.ErrorResponse("OVER_QUERY_LIMIT", "quota"), nil, 2},
		{"REQUEST_DENIED", places.ErrorResponse("REQUEST_DENIED", "bad key"), nil, 2},
		{"INVALID_REQUEST", places.ErrorResponse("INVALID_REQUEST", ""), nil, 2},
		{"UNKNOWN_ERROR", places.ErrorResponse("", "server error"), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
				return tt.resp, tt.err
			}}
			c := cache.New(f, cache.Options{})
			for range 2 {
				resp, err := c.Nearby(context.Background(), ucla)
				switch {
				case tt.err != nil && !errors.Is(err, tt.err):
					t.Fatalf("err = %v, want %v", err, tt.err)
				case tt.err == nil && tt.resp == nil && err == nil:
					t.Fatal("got no error for an upstream that returned nothing")
				case tt.resp != nil && (err != nil || resp.Status != tt.resp.Status):
					t.Fatalf("Nearby = %+v, %v; want status %s", resp, err, tt.resp.Status)
				}
			}
			checkCalls(t, f, tt.wantCalls)
			if s := c.Stats(); s.Entries != 2-int(tt.wantCalls) {
				t.Fatalf("Stats = %+v", s)
			}
		})
	}

	// A failure does not hide the success that follows it.
	fail := true
	f := &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
		if fail {
			fail = false
			return nil, errUpstream
		}
		return okResponse(1), nil
	}}
	c := cache.New(f, cache.Options{})
	if _, err := c.Nearby(context.Background(), ucla); !errors.Is(err, errUpstream) {
		t.Fatalf("first lookup: err = %v, want %v", err, errUpstream)
	}
	mustNearby(t, c, ucla)
	mustNearby(t, c, ucla)
	checkCalls(t, f, 2)
	want := cache.Stats{Hits: 1, Misses: 2, UpstreamCalls: 2, UpstreamErrors: 1, Entries: 1}
	if s := statsWithoutBytes(c); s != want {
		t.Fatalf("Stats = %+v, want %+v", s, want)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	f := answering(1)
	c := cache.New(f, cache.Options{MaxEntries: 2})
	mustNearby(t, c, at(0))
	mustNearby(t, c, at(1))
	mustNearby(t, c, at(0)) // hit: at(1) is now the least recently used
	mustNearby(t, c, at(2)) // evicts at(1)
	checkCalls(t, f, 3)

	mustNearby(t, c, at(0))
	mustNearby(t, c, at(2))
	checkCalls(t, f, 3)
	mustNearby(t, c, at(1))
	checkCalls(t, f, 4)
	want := cache.Stats{Hits: 3, Misses: 4, UpstreamCalls: 4, Evictions: 2, Entries: 2}
	if s := statsWithoutBytes(c); s != want {
		t.Fatalf("Stats = %+v, want %+v", s, want)
	}
}

// TestRateLimit: over the limit a lookup is answered at once with
// OVER_QUERY_LIMIT, for every caller sharing it, without an upstream call,
// and nothing is stored; cache hits need no token.
func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := answering(1)
		c := cache.New(f, cache.Options{Rate: 1, Burst: 1})
		start := time.Now()
		lookup := func(q places.Query) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := c.Nearby(ctx, q)
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("lookup took %v, want an answer at once", d)
			}
			return resp.Status
		}
		if st := lookup(at(0)); st != places.StatusOK {
			t.Fatalf("first lookup: %s", st)
		}
		for range 3 {
			if st := lookup(at(1)); st != places.StatusOverQueryLimit {
				t.Fatalf("lookup over the limit: %s, want OVER_QUERY_LIMIT", st)
			}
		}
		if st := lookup(at(0)); st != places.StatusOK { // a hit needs no token
			t.Fatalf("hit: %s", st)
		}
		checkCalls(t, f, 1)
		time.Sleep(time.Second) // the next token (synctest's fake clock)
		start = time.Now()
		if st := lookup(at(1)); st != places.StatusOK {
			t.Fatalf("lookup after a second: %s", st)
		}
		checkCalls(t, f, 2)
		if s := c.Stats(); s.RateLimited != 3 || s.UpstreamCalls != 2 || s.Entries != 2 {
			t.Fatalf("Stats = %+v, want 3 rate limited, 2 upstream calls, 2 entries", s)
		}
	})
}

// TestMaxBytes: the answers held stay within MaxBytes, the least recently
// used evicted first, and an answer larger than the bound is not stored.
func TestMaxBytes(t *testing.T) {
	big := func(n int) *fakeFinder {
		res, _ := json.Marshal(map[string]string{"name": strings.Repeat("p", n)})
		return &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
			return &places.Response{Status: places.StatusOK, Results: []json.RawMessage{res}}, nil
		}}
	}
	f := big(1000)
	c := cache.New(f, cache.Options{MaxBytes: 3500})
	for i := range 10 {
		mustNearby(t, c, at(i))
		if s := c.Stats(); s.Bytes > 3500 || s.Entries > 3 {
			t.Fatalf("after %d lookups: %+v", i+1, s)
		}
	}
	if s := c.Stats(); s.Entries != 2 || s.Evictions != 8 {
		t.Fatalf("Stats = %+v, want 2 entries of ~1.3 KB held, 8 evicted", s)
	}
	mustNearby(t, c, at(9)) // the most recent one is still held
	checkCalls(t, f, 10)

	huge := big(5000)
	c = cache.New(huge, cache.Options{MaxBytes: 3500})
	mustNearby(t, c, at(0))
	mustNearby(t, c, at(0))
	checkCalls(t, huge, 2)
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("an answer over MaxBytes was stored: %+v", s)
	}
}

func TestCancelledCallerLeavesSharedCallRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var upstreamCtxErr error
		f := &fakeFinder{nearby: func(ctx context.Context, _ places.Query) (*places.Response, error) {
			<-release
			upstreamCtxErr = ctx.Err()
			return okResponse(1), nil
		}}
		c := cache.New(f, cache.Options{})

		type result struct {
			resp *places.Response
			err  error
		}
		first, second := make(chan result, 1), make(chan result, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			resp, err := c.Nearby(ctx, ucla)
			first <- result{resp, err}
		}()
		synctest.Wait() // the first caller leads the upstream call
		go func() {
			resp, err := c.Nearby(context.Background(), ucla)
			second <- result{resp, err}
		}()
		synctest.Wait()

		cancel()
		synctest.Wait()
		select {
		case r := <-first:
			if !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled caller: err = %v, want context.Canceled", r.err)
			}
		default:
			t.Fatal("cancelled caller did not return")
		}
		select {
		case r := <-second:
			t.Fatalf("second caller returned before the upstream answered: %+v", r)
		default:
		}

		close(release)
		r := <-second
		if r.err != nil || r.resp.Status != places.StatusOK {
			t.Fatalf("second caller: %+v, %v", r.resp, r.err)
		}
		if upstreamCtxErr != nil {
			t.Fatalf("upstream context was done: %v", upstreamCtxErr)
		}
		mustNearby(t, c, ucla)
		checkCalls(t, f, 1)
	})
}

func TestAbandonedCallIsStillStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		f := &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
			<-release
			return okResponse(1), nil
		}}
		c := cache.New(f, cache.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := c.Nearby(ctx, ucla); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		close(release)
		synctest.Wait() // the detached call finishes and stores its answer
		mustNearby(t, c, ucla)
		checkCalls(t, f, 1)
	})
}

func TestUpstreamTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"default", 0, cache.DefaultUpstreamTimeout},
		{"custom", 3 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeFinder{nearby: func(ctx context.Context, _ places.Query) (*places.Response, error) {
					<-ctx.Done()
					return nil, fmt.Errorf("fake: %w", ctx.Err())
				}}
				c := cache.New(f, cache.Options{UpstreamTimeout: tt.timeout})
				start := time.Now()
				_, err := c.Nearby(context.Background(), ucla)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d != tt.want {
					t.Fatalf("upstream call was cut after %v, want %v", d, tt.want)
				}
			})
		})
	}
}

func TestDoneContext(t *testing.T) {
	f := answering(1)
	c := cache.New(f, cache.Options{})
	mustNearby(t, c, at(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Nearby(ctx, at(0)); err != nil {
		t.Fatalf("hit with a done context: %v", err)
	}
	if _, err := c.Nearby(ctx, at(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("miss with a done context: err = %v, want context.Canceled", err)
	}
	checkCalls(t, f, 1)
}

func TestStoresItsOwnCopy(t *testing.T) {
	upstream := okResponse(2)
	upstream.Extra = map[string]json.RawMessage{"next": json.RawMessage(`1`)}
	f := &fakeFinder{nearby: func(context.Context, places.Query) (*places.Response, error) {
		return upstream, nil
	}}
	c := cache.New(f, cache.Options{})
	got := mustNearby(t, c, ucla)

	// The upstream reuses its value; the cached answer must not change.
	upstream.Results[0][2] = 'X'
	upstream.Results = upstream.Results[:1]
	upstream.Extra["next"][0] = '2'
	upstream.Status = "REQUEST_DENIED"

	again := mustNearby(t, c, ucla)
	if again != got {
		t.Fatal("a hit returned a different Response than the miss that stored it")
	}
	if got.Status != places.StatusOK || len(got.Results) != 2 ||
		string(got.Results[0]) != `{"name":"place 0"}` || string(got.Extra["next"]) != `1` {
		t.Fatalf("cached answer changed with the upstream's value: %+v", got)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := cache.New(answering(places.MaxBound), cache.Options{})
	ctx := context.Background()
	if _, err := c.Nearby(ctx, ucla); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Nearby(ctx, ucla); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// statsWithoutBytes is c's Stats with Bytes zeroed, for tests that compare
// counts and let TestMaxBytes check the bytes.
func statsWithoutBytes(c *cache.Cache) cache.Stats {
	s := c.Stats()
	s.Bytes = 0
	return s
}
