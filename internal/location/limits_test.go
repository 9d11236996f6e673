package location

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// at is an AT record of client timed sec seconds after the epoch.
func at(t *testing.T, server, client string, sec int64) Record {
	return rec(t, fmt.Sprintf("AT %s +0.000000000 %s +1+1 %d.5", server, client, sec))
}

func TestLimits(t *testing.T) {
	const now = 1_700_000_000
	type step struct {
		r     func(t *testing.T) Record
		local bool
		err   error // for a local record; a peer record is dropped instead
		want  bool  // changed
	}
	tests := map[string]struct {
		lim   Limits
		steps []step
	}{
		"future local": {Limits{MaxClockSkew: time.Hour}, []step{
			{func(t *testing.T) Record { return at(t, "A", "c", now+3600) }, true, ErrFuture, false}, // 3600.5 s ahead: over by half a second
			{func(t *testing.T) Record { return at(t, "A", "d", now+3599) }, true, nil, true},
		}},
		"far future local": {Limits{MaxClockSkew: time.Hour}, []step{
			{func(t *testing.T) Record { return rec(t, "AT A +0.000000000 c +1+1 9223372036854775807.999999999") }, true, ErrFuture, false},
			{func(t *testing.T) Record { return at(t, "A", "c", now) }, true, nil, true},
		}},
		"far future peer": {Limits{MaxClockSkew: time.Hour}, []step{
			{func(t *testing.T) Record { return rec(t, "AT A +0.000000000 c +1+1 9223372036854775807.999999999") }, false, nil, false},
			{func(t *testing.T) Record { return at(t, "A", "c", now) }, false, nil, true},
		}},
		"no skew bound": {Limits{}, []step{
			{func(t *testing.T) Record { return rec(t, "AT A +0.000000000 c +1+1 9223372036854775807.999999999") }, true, nil, true},
		}},
		"full local": {Limits{MaxClients: 2}, []step{
			{func(t *testing.T) Record { return at(t, "A", "a", now) }, true, nil, true},
			{func(t *testing.T) Record { return at(t, "A", "b", now) }, true, nil, true},
			{func(t *testing.T) Record { return at(t, "A", "c", now) }, true, ErrFull, false},
			{func(t *testing.T) Record { return at(t, "A", "a", now+1) }, true, nil, true}, // known clients still update
			{func(t *testing.T) Record { return at(t, "B", "b", now+1) }, false, nil, true},
		}},
		"full peer": {Limits{MaxClients: 1}, []step{
			{func(t *testing.T) Record { return at(t, "A", "a", now) }, false, nil, true},
			{func(t *testing.T) Record { return at(t, "A", "b", now) }, false, nil, false},
		}},
		"expired on arrival": {Limits{TTL: time.Hour}, []step{
			{func(t *testing.T) Record { return at(t, "A", "a", now-3601) }, true, ErrExpired, false},
			{func(t *testing.T) Record { return at(t, "A", "b", now-3601) }, false, nil, false},
			{func(t *testing.T) Record { return at(t, "A", "c", now-3599) }, true, nil, true},
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := &clock{t: time.Unix(now, 0)}
			tab := NewTable(WithLimits(tt.lim), WithClock(c.now))
			for i, s := range tt.steps {
				r := s.r(t)
				var changed bool
				var err error
				if s.local {
					_, changed, err = tab.ApplyLocal(r)
				} else {
					_, changed = tab.Apply(r, "N")
				}
				if !errors.Is(err, s.err) || changed != s.want {
					t.Fatalf("step %d (%s): changed=%v err=%v, want changed=%v err=%v", i, r.Line, changed, err, s.want, s.err)
				}
			}
		})
	}
}

func TestLimitsCounted(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tab := NewTable(WithLimits(Limits{MaxClockSkew: time.Second, MaxClients: 1, TTL: time.Minute}), WithClock(c.now))
	tab.Apply(at(t, "A", "a", 2000), "N")
	tab.ApplyLocal(at(t, "A", "a", 2000))
	tab.Apply(at(t, "A", "a", 1000), "N")
	tab.Apply(at(t, "A", "b", 1000), "N")
	tab.ApplyLocal(at(t, "A", "b", 1000))
	tab.Apply(at(t, "A", "c", 10), "N")
	got := tab.Stats()
	want := Stats{RejectedFuture: 2, RejectedFull: 2, RejectedExpired: 1}
	if got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

// TestExpiry: a record is invisible once older than the ttl, by client
// time, and Expire forgets it, making room under max_clients.
func TestExpiry(t *testing.T) {
	c := &clock{t: time.Unix(10_000, 0)}
	tab := NewTable(WithLimits(Limits{TTL: 100 * time.Second, MaxClients: 2}), WithClock(c.now))
	tab.ApplyLocal(at(t, "A", "old", 9_950))
	tab.Apply(at(t, "B", "new", 9_990), "N")
	seen := func() map[string]bool {
		m := map[string]bool{}
		tab.Range(func(r Record) bool { m[r.Client] = true; return true })
		return m
	}
	if s := seen(); !s["old"] || !s["new"] || tab.Len() != 2 {
		t.Fatalf("before expiry: Range saw %v, Len %d", s, tab.Len())
	}
	c.add(60 * time.Second) // "old" is now 110.5 s old, "new" 70.5 s
	if _, ok := tab.Get("old"); ok {
		t.Fatal("Get found an expired record")
	}
	if _, ok := tab.GetBytes([]byte("old")); ok {
		t.Fatal("GetBytes found an expired record")
	}
	if _, ok := tab.Get("new"); !ok {
		t.Fatal("a fresh record is gone")
	}
	if s := seen(); s["old"] || !s["new"] {
		t.Fatalf("Range saw %v, want only new", s)
	}
	// Until Expire runs, the expired record still counts under max_clients.
	if n := tab.Expire(); n != 1 || tab.Len() != 1 || tab.Stats().Expired != 1 {
		t.Fatalf("Expire forgot %d, Len %d, stats %+v", n, tab.Len(), tab.Stats())
	}
	if _, changed, err := tab.ApplyLocal(at(t, "A", "third", 10_050)); !changed || err != nil {
		t.Fatalf("no room after expiry: %v %v", changed, err)
	}
	if got := tab.ExpireEvery(); got != 10*time.Second {
		t.Fatalf("ExpireEvery %v", got)
	}
}

// TestRestoreDropsFuture: a stored far-future time does not survive a
// restart, so it cannot lock a client for good.
func TestRestoreDropsFuture(t *testing.T) {
	c := &clock{t: time.Unix(10_000, 0)}
	tab := NewTable(WithLimits(Limits{MaxClockSkew: time.Hour, TTL: time.Hour}), WithClock(c.now))
	recs := []Record{
		rec(t, "AT A +0.000000000 kiwi +1+1 9223372036854775807.999999999"),
		at(t, "A", "kiwi", 9_000),
		at(t, "A", "gone", 5_000),
	}
	for i := range recs {
		recs[i].Seq = uint64(i + 1)
	}
	tab.Restore(recs, 3)
	if r, ok := tab.Get("kiwi"); !ok || r.Line != recs[1].Line {
		t.Fatalf("kiwi restored as %q %v", r.Line, ok)
	}
	if _, ok := tab.Get("gone"); ok || tab.Len() != 1 || tab.Seq() != 3 {
		t.Fatalf("len %d seq %d", tab.Len(), tab.Seq())
	}
}

// BenchmarkApplyLocalLimits is the cost of the limit checks on the IAMAT
// path; compare with BenchmarkApplyLocalNoLimits.
func BenchmarkApplyLocalLimits(b *testing.B) {
	benchApplyLocal(b, NewTable(WithLimits(Limits{MaxClockSkew: 24 * time.Hour, MaxClients: 5_000_000, TTL: 24 * time.Hour})))
}

// BenchmarkApplyLocalDefaultLimits is the default [locations]: a clock
// skew bound and max_clients, no ttl.
func BenchmarkApplyLocalDefaultLimits(b *testing.B) {
	benchApplyLocal(b, NewTable(WithLimits(Limits{MaxClockSkew: 24 * time.Hour, MaxClients: 5_000_000})))
}

func BenchmarkApplyLocalNoLimits(b *testing.B) { benchApplyLocal(b, NewTable()) }

func benchApplyLocal(b *testing.B, tab *Table) {
	now := time.Now().Unix()
	recs := make([]Record, 4096)
	for i := range recs {
		recs[i] = rec(b, fmt.Sprintf("AT S +0.000000000 client%d +1+1 %d", i, now))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := recs[i%len(recs)]
		r.Time.Nsec = int32(i / len(recs)) // always newer
		tab.ApplyLocal(r)
		tab.GetBytes([]byte(r.Client))
		i++
	}
}

// TestRefusalsLoggedOnceAMinute: a burst of refusals of one reason makes
// one log line, which says how many were refused.
func TestRefusalsLoggedOnceAMinute(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	c := &clock{t: time.Unix(1000, 0)}
	tab := NewTable(WithLimits(Limits{MaxClients: 1, MaxClockSkew: time.Hour}), WithClock(c.now), WithLogger(log))
	tab.ApplyLocal(at(t, "A", "a", 1000))
	for i := range 100 {
		tab.ApplyLocal(at(t, "A", fmt.Sprintf("new%d", i), 1000))
		tab.Apply(at(t, "A", "a", 1_000_000), "N")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("%d log lines for 200 refusals of two reasons, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "max_clients=1") || !strings.Contains(out, "max_clock_skew=1h0m0s") {
		t.Fatalf("log lacks the limits:\n%s", out)
	}
	if s := tab.Stats(); s.RejectedFull != 100 || s.RejectedFuture != 100 {
		t.Fatalf("stats %+v", s)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
