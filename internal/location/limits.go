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
	// TombstoneTTL forgets a tombstone (a deleted client) once its time is
	// older than the table's clock minus this, and refuses such
	// tombstones; with a TTL, a tombstone older than TTL is forgotten too,
	// since every record it could still beat has expired. Zero: tombstones
	// are kept for ever (or for TTL).
	TombstoneTTL time.Duration
}

// Option configures a Table at NewTable.
type Option func(*Table)

// WithLimits makes the table enforce l.
func WithLimits(l Limits) Option { return func(t *Table) { t.lim.Store(&l) } }

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
	// ErrDeleted refuses an IAMAT timed at or before the client's deletion.
	ErrDeleted = errors.New("the client was deleted at or after this time")
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
func (t *Table) Limits() Limits { return *t.lim.Load() }

// SetLimits makes l the table's limits from now on (a reload): they apply
// to the next record checked and the next expiry sweep.
func (t *Table) SetLimits(l Limits) { t.lim.Store(&l) }

// bounds are the limits as client times, at one reading of the clock.
type bounds struct {
	latest   protocol.Time // records timed after it are refused; valid if skew
	earliest protocol.Time // records timed before it are expired; valid if ttl
	tombs    protocol.Time // tombstones timed before it are expired; valid if tombTTL
	skew     bool
	ttl      bool
	tombTTL  bool
}

// timeLimits reports whether the table expires anything.
func (t *Table) timeLimits() bool { return t.lim.Load().timed() }

// timed reports whether l expires anything.
func (l *Limits) timed() bool { return l.TTL > 0 || l.TombstoneTTL > 0 }

// bounds reads the limits and the clock once; without time limits it does
// not read the clock.
func (t *Table) bounds() bounds {
	l := t.lim.Load()
	if l.MaxClockSkew <= 0 && !l.timed() {
		return bounds{}
	}
	now := t.now()
	sec, nsec := now.Unix(), int64(now.Nanosecond())
	var b bounds
	if d := l.MaxClockSkew; d > 0 {
		b.skew, b.latest = true, timeAt(sec, nsec+int64(d))
	}
	if d := l.TTL; d > 0 {
		b.ttl, b.earliest = true, timeAt(sec, nsec-int64(d))
		b.tombTTL, b.tombs = true, b.earliest
	}
	if d := l.TombstoneTTL; d > 0 {
		if e := timeAt(sec, nsec-int64(d)); !b.tombTTL || e.Compare(b.tombs) > 0 {
			b.tombTTL, b.tombs = true, e
		}
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

// checkRecord is check for a record or a tombstone, each by its own time
// to live.
func (b bounds) checkRecord(r Record) error {
	if !r.Deleted() {
		return b.check(r.Time)
	}
	switch {
	case b.skew && r.Time.Compare(b.latest) > 0:
		return ErrFuture
	case b.tombTTL && r.Time.Compare(b.tombs) < 0:
		return ErrExpired
	}
	return nil
}

// expired reports whether a stored entry is past its time to live (TTL
// for records, TombstoneTTL for tombstones).
func (b bounds) expired(e entry) bool {
	tm := protocol.Time{Sec: e.sec, Nsec: e.nsec}
	if e.deleted() {
		return b.tombTTL && tm.Compare(b.tombs) < 0
	}
	return b.ttl && tm.Compare(b.earliest) < 0
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
		args = append(args, "max_clients", t.lim.Load().MaxClients)
	case reasonFuture:
		args = append(args, "max_clock_skew", t.lim.Load().MaxClockSkew.String())
	case reasonExpired:
		args = append(args, "ttl", t.lim.Load().TTL.String())
	}
	t.log.Warn("location updates refused (logged at most once a minute per reason)", args...)
}

// Expire forgets every record older than the TTL and every tombstone older
// than the TombstoneTTL, and returns how many records (tombstones not
// counted) it forgot. Expired entries are already invisible to Get and
// Range; Expire frees their memory and their place under MaxClients. It is
// not a change: no Seq is used and no hook runs, since every server expires
// the same records by itself.
func (t *Table) Expire() int { return t.ExpireFunc(nil) }

// ExpireFunc is Expire that calls forget, if not nil, with each record
// (not tombstone) it forgets. forget runs with the change lock held, in
// order with the change hooks, so that whatever follows the table through
// its hooks (an index of locations) can follow expiry too; like a hook it
// must be quick and must not call back into the table's change methods.
func (t *Table) ExpireFunc(forget func(Record)) int {
	if !t.timeLimits() {
		return 0
	}
	b := t.bounds()
	n, tombs := 0, 0
	var gone []Record
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		gone = gone[:0]
		for k, e := range s.m {
			if !b.expired(e) {
				continue
			}
			delete(s.m, k)
			if e.deleted() {
				tombs++
				t.tombs.Add(-1)
				continue
			}
			n++
			t.n.Add(-1)
			if forget != nil {
				gone = append(gone, t.record(e, len(k)))
			}
		}
		// The change lock is taken before the shard's is let go, as in a
		// change: forget sees the expiry before any later change of a client.
		t.mu.Lock()
		s.mu.Unlock()
		for _, r := range gone {
			forget(r)
		}
		t.mu.Unlock()
	}
	t.n.Add(int64(-tombs))
	t.stats.expired.Add(uint64(n))
	return n
}

// ExpireEvery is how often Expire should run for the table's TTL and
// TombstoneTTL: a tenth of the shorter, between a second and a minute;
// zero without either.
func (t *Table) ExpireEvery() time.Duration {
	d := t.lim.Load().TTL
	if td := t.lim.Load().TombstoneTTL; td > 0 && (d <= 0 || td < d) {
		d = td
	}
	if d <= 0 {
		return 0
	}
	return min(max(d/10, time.Second), time.Minute)
}

// Delete makes a tombstone for client, timed at the table's clock (or one
// nanosecond after the stored record, when that record's client time is
// ahead of the clock), naming server as the one that deleted it, and
// applies it as ApplyLocal would: the change hooks see it (so it is stored
// and flooded). It returns the tombstone and true, or false when the table
// holds no location for client (unknown, expired or already deleted).
func (t *Table) Delete(server, client string) (Record, bool) {
	b := t.bounds()
	s := t.shard(client)
	s.mu.Lock()
	e, ok := s.m[client]
	if !ok || e.deleted() || b.expired(e) {
		s.mu.Unlock()
		return Record{}, false
	}
	now := t.now()
	tm := timeAt(now.Unix(), int64(now.Nanosecond()))
	if old := (protocol.Time{Sec: e.sec, Nsec: e.nsec}); tm.Compare(old) <= 0 {
		tm = timeAt(old.Sec, int64(old.Nsec)+1)
	}
	line := string(protocol.AppendDEL(nil, server, client, tm))
	// "DEL <server> <client> <time>"
	r := MakeRecord(line, len("DEL ")+len(server)+1, len(client), tm)
	t.mu.Lock() // after the shard's, as in a change
	defer t.mu.Unlock()
	return t.commitLocked(s, r, "", true, false), true
}
