package location

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"herd/internal/protocol"
)

// Limits bound what a Table holds (SPEC §9). The zero value bounds nothing.
// The same limits apply to a client's IAMAT (ApplyLocal) and to a
// neighbour's record (Apply, Offer), so that every server decides alike.
type Limits struct {
	// MaxClockSkew refuses a record whose client time is later than the
	// table's clock plus this. Zero: no bound.
	MaxClockSkew time.Duration
	// MaxClients refuses a record for a new client while the table holds
	// this many. Known clients still update. Zero: no bound.
	MaxClients int
	// TTL forgets a record once its client time is older than the table's
	// clock minus this, and refuses such records. Zero: records are kept
	// for ever.
	TTL time.Duration
}

// Option configures a Table at NewTable.
type Option func(*Table)

// WithLimits makes the table enforce l.
func WithLimits(l Limits) Option { return func(t *Table) { t.lim = l } }

// WithClock replaces time.Now as the table's clock (tests).
func WithClock(now func() time.Time) Option { return func(t *Table) { t.now = now } }

// WithLogger gives the table a logger for refusals, logged at most once a
// minute per reason.
func WithLogger(l *slog.Logger) Option { return func(t *Table) { t.log = l } }

// Why a record was refused.
var (
	ErrFuture  = errors.New("client time is later than this server's clock plus max_clock_skew")
	ErrFull    = errors.New("location table is full (max_clients): no room for a new client")
	ErrExpired = errors.New("client time is older than this server's clock minus ttl")
)

// warnEvery is the least time between two log lines about refusals of one
// reason.
const warnEvery = time.Minute

// Stats counts what a Table refused and forgot, since NewTable.
type Stats struct {
	RejectedFuture  uint64 // records timed beyond MaxClockSkew
	RejectedFull    uint64 // records for a new client refused at MaxClients
	RejectedExpired uint64 // records already older than TTL when offered
	Expired         uint64 // records forgotten by Expire
}

// reason indexes the counters of a refusal reason.
type reason int

const (
	reasonFuture reason = iota
	reasonFull
	reasonExpired
	numReasons
)

func reasonOf(err error) reason {
	switch err {
	case ErrFuture:
		return reasonFuture
	case ErrFull:
		return reasonFull
	}
	return reasonExpired
}

type counters struct {
	refused [numReasons]atomic.Uint64 // since NewTable
	since   [numReasons]atomic.Uint64 // since the reason was last logged
	expired atomic.Uint64             // forgotten by Expire
}

func (c *counters) count(r reason) {
	c.refused[r].Add(1)
	c.since[r].Add(1)
}

// Stats returns the table's counts.
func (t *Table) Stats() Stats {
	return Stats{
		RejectedFuture:  t.stats.refused[reasonFuture].Load(),
		RejectedFull:    t.stats.refused[reasonFull].Load(),
		RejectedExpired: t.stats.refused[reasonExpired].Load(),
		Expired:         t.stats.expired.Load(),
	}
}

// Limits returns the limits the table enforces.
func (t *Table) Limits() Limits { return t.lim }

// bounds are the limits as client times, at one reading of the clock.
type bounds struct {
	latest   protocol.Time // records timed after it are refused; valid if skew
	earliest protocol.Time // records timed before it are expired; valid if ttl
	skew     bool
	ttl      bool
}

// bounds reads the clock once; without time limits it does not read it.
func (t *Table) bounds() bounds {
	if t.lim.MaxClockSkew <= 0 && t.lim.TTL <= 0 {
		return bounds{}
	}
	now := t.now()
	sec, nsec := now.Unix(), int64(now.Nanosecond())
	var b bounds
	if d := t.lim.MaxClockSkew; d > 0 {
		b.skew, b.latest = true, timeAt(sec, nsec+int64(d))
	}
	if d := t.lim.TTL; d > 0 {
		b.ttl, b.earliest = true, timeAt(sec, nsec-int64(d))
	}
	return b
}

// timeAt is the client time sec seconds plus nsec nanoseconds (any sign)
// after the epoch; times before the epoch become the epoch, the earliest
// client time.
func timeAt(sec, nsec int64) protocol.Time {
	sec += nsec / 1e9
	nsec %= 1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	if sec < 0 {
		return protocol.Time{}
	}
	return protocol.Time{Sec: sec, Nsec: int32(nsec)}
}

// check says why a record timed tm may not be stored, or nil.
func (b bounds) check(tm protocol.Time) error {
	switch {
	case b.skew && tm.Compare(b.latest) > 0:
		return ErrFuture
	case b.ttl && tm.Compare(b.earliest) < 0:
		return ErrExpired
	}
	return nil
}

// expired reports whether a stored entry is past the TTL.
func (b bounds) expired(e entry) bool {
	return b.ttl && (protocol.Time{Sec: e.sec, Nsec: e.nsec}).Compare(b.earliest) < 0
}

// refuse counts a refused record and logs it if no refusal of that reason
// was logged in the last minute. It takes no lock: a flood of refused
// records does not slow the table's changes.
func (t *Table) refuse(err error) {
	r := reasonOf(err)
	t.stats.count(r)
	now := time.Now().UnixNano()
	last := t.lastWarn[r].Load()
	if now-last < int64(warnEvery) || !t.lastWarn[r].CompareAndSwap(last, now) {
		return
	}
	args := []any{"reason", err.Error(), "refused", t.stats.since[r].Swap(0)}
	switch r {
	case reasonFull:
		args = append(args, "max_clients", t.lim.MaxClients)
	case reasonFuture:
		args = append(args, "max_clock_skew", t.lim.MaxClockSkew.String())
	case reasonExpired:
		args = append(args, "ttl", t.lim.TTL.String())
	}
	t.log.Warn("location updates refused (logged at most once a minute per reason)", args...)
}

// Expire forgets every record older than the TTL and returns how many it
// forgot. Expired records are already invisible to Get and Range; Expire
// frees their memory and their place under MaxClients. It is not a change:
// no Seq is used and no hook runs, since every server expires the same
// records by itself.
func (t *Table) Expire() int {
	if t.lim.TTL <= 0 {
		return 0
	}
	b := t.bounds()
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if b.expired(e) {
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	t.n.Add(int64(-n))
	t.stats.expired.Add(uint64(n))
	return n
}

// ExpireEvery is how often Expire should run for the table's TTL: a tenth
// of it, between a second and a minute; zero without a TTL.
func (t *Table) ExpireEvery() time.Duration {
	if t.lim.TTL <= 0 {
		return 0
	}
	return min(max(t.lim.TTL/10, time.Second), time.Minute)
}
