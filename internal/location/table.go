// Package location keeps the latest known location of every client and
// decides which of two reports of one client wins.
//
// The merge rule is the same on every server, so the herd converges:
//  1. the record with the later client time wins;
//  2. between records with equal client times, the one whose AT line is
//     greater (byte-wise) wins — except that an IAMAT received from a client
//     never replaces a stored record with an equal time (SPEC: "newer or
//     equal … nothing changes").
//
// Rule 2 lets two servers that received different IAMATs with the same
// client time agree on one of them without any coordination.
//
// A deleted client is held as a tombstone (see protocol.AppendDEL): a
// record whose line is "DEL <server> <client> <time>", timed at the
// deleting server's clock. It merges by the same rule — it beats every
// record older than its time, loses to newer ones, and at an equal time
// wins, since "DEL" sorts after "AT" — so a record older than the deletion
// that arrives later, from a neighbour that was away, cannot bring the
// location back. Readers (Get, GetBytes, Range) never see tombstones;
// RangeAll does, for catch-up and snapshots. Tombstones are forgotten once
// older than Limits.TombstoneTTL.
//
// A table may also bound what it holds (see Limits): client times too far
// ahead of the server's clock, new clients beyond a count, and records
// older than a time to live are refused, whether they come from a client
// or a neighbour, and expired records are forgotten. Expiry is by client
// time, so every server forgets the same records.
package location

import (
	"bytes"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"herd/internal/protocol"
)

// Record is a client's latest location: the AT line produced by the server
// that first received it, and the parsed fields needed to merge.
//
// A Record that goes into a Table is made by NewRecord or MakeRecord, which
// note where Client sits in Line.
type Record struct {
	Line   string        // the AT line, no line ending; immutable
	Client string        // the client id; a substring of Line
	Time   protocol.Time // the client's time from Line
	Seq    uint64        // this server's change number when it stored the record; set by the Table
	From   string        // the neighbour it came from; empty for a client's IAMAT (or unknown); set by the Table

	clientOff uint16 // Client is Line[clientOff:][:len(Client)]
}

// MakeRecord is the one constructor of a Record: line, already checked,
// holds the client id at line[clientOff:clientOff+clientLen], and tm is its
// client time.
func MakeRecord(line string, clientOff, clientLen int, tm protocol.Time) Record {
	return Record{Line: line, Client: line[clientOff : clientOff+clientLen], Time: tm, clientOff: uint16(clientOff)}
}

// offsetIn returns the offset in line of sub, a slice of line's array (as
// protocol.CheckAT returns the client id).
func offsetIn(line, sub []byte) int { return cap(line) - cap(sub) }

// Deleted reports whether r is a tombstone.
func (r Record) Deleted() bool { return protocol.IsDEL(r.Line) }

// NewRecord builds a record from an AT line or a tombstone line, validating
// it. White space around the line (such as its line ending) is not kept.
func NewRecord(line []byte) (Record, error) {
	line = bytes.TrimFunc(line, func(r rune) bool { return r < utf8.RuneSelf && asciiSpace[r] })
	check := protocol.CheckAT
	if protocol.IsDEL(string(line)) {
		check = protocol.CheckDEL
	}
	client, t, err := check(line)
	if err != nil {
		return Record{}, err
	}
	return MakeRecord(string(line), offsetIn(line, client), len(client), t), nil
}

// Offer applies an update from the neighbour named from, given as its AT
// line already checked by protocol.CheckAT, or a tombstone line checked by
// protocol.CheckDEL (client and t from it). A stale update — the common
// case in a flood — is recognised before anything is allocated. Offer
// reports whether the table changed.
func (t *Table) Offer(line, client []byte, tm protocol.Time, from string) bool {
	s := t.shardBytes(client)
	s.mu.Lock()
	e, known := s.m[string(client)]
	if known && !t.expiredEntry(e) && !beats(tm, e.time(), false, func() bool { return string(line) > e.line }) {
		s.mu.Unlock()
		return false
	}
	r := MakeRecord(string(line), offsetIn(line, client), len(client), tm)
	_, changed, _ := t.applyLocked(s, e, known, r, from, false)
	return changed
}

// Wins reports whether r should replace old under the merge rule, for a
// record that came from another server.
func (r Record) Wins(old Record) bool {
	return beats(r.Time, old.Time, false, func() bool { return r.Line > old.Line })
}

// beats is the merge rule (see the package comment): whether a record timed
// tm replaces a stored one timed old. At equal times a client's own IAMAT
// (local) never does, and otherwise the greater line wins: greater reports
// whether the offered line is greater than the stored one, and is called
// only then.
func beats(tm, old protocol.Time, local bool, greater func() bool) bool {
	switch tm.Compare(old) {
	case 1:
		return true
	case 0:
		return !local && greater()
	}
	return false
}

var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\v': true, '\f': true, '\r': true}

const shardCount = 64

// Table is the set of latest client records, safe for concurrent use.
//
// Every change gets the next change number (Seq) of the table, and the
// table's change hooks see changes one at a time in Seq order. That order
// is what lets a neighbour ask for "everything after change N" when it
// reconnects, and lets a log record changes in order.
type Table struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	lim      atomic.Pointer[Limits] // never nil; replaced whole by SetLimits
	now      func() time.Time       // immutable after NewTable
	log      *slog.Logger           // immutable after NewTable
	n        atomic.Int64           // entries in all shards (expired ones not yet swept included): whatever adds or deletes one updates it
	tombs    atomic.Int64           // how many of the n entries are tombstones: whatever changes one updates it
	stats    counters
	lastWarn [numReasons]atomic.Int64 // when a refusal was last logged, by reason (Unix ns)

	mu    sync.Mutex // orders changes: guards seq, hooks and froms, held while hooks run
	seq   uint64     // the Seq of the latest change
	hooks []Hook
	// froms names the neighbours records came from, by index; index 0 is
	// "" (a client). An index is written once, under mu, before any entry
	// using it is stored under its shard's lock, so readers that got the
	// entry may read froms[i] without mu.
	froms [256]string
	fromN int              // guarded by mu: indexes used
	fromI map[string]uint8 // guarded by mu: index of each name in froms
}

// Hook sees every change of a Table, in Seq order, while the table's change
// lock is held: it must be quick and must not block or call back into the
// table's change methods. from names the neighbour the record came from, or
// is empty for a record from a client or recovered from disk.
type Hook func(r Record, from string)

// entry is a record as the table stores it: 40 bytes besides the line,
// since a herd may know millions of clients. The client id is the map key
// and a substring of line, at clientOff.
type entry struct {
	line      string
	sec       int64
	nsec      int32
	clientOff uint16
	from      uint8 // index into Table.froms
	seq       uint64
}

type shard struct {
	mu sync.RWMutex
	m  map[string]entry // guarded by mu; the key is the client id, sharing line's bytes
	_  [40]byte         // keep shards on separate cache lines
}

// record turns a stored entry back into a Record. The entry was read under
// its shard's lock (see Table.froms).
func (t *Table) record(e entry, clientLen int) Record {
	r := MakeRecord(e.line, int(e.clientOff), clientLen, e.time())
	r.Seq, r.From = e.seq, t.froms[e.from]
	return r
}

// time is the client time of a stored entry.
func (e entry) time() protocol.Time { return protocol.Time{Sec: e.sec, Nsec: e.nsec} }

// fromName is the neighbour name of index i, for an entry read under its
// shard's lock (see Table.froms).
func (t *Table) fromName(i uint8) string { return t.froms[i] }

// fromIndexLocked interns a neighbour name. t.mu must be held.
func (t *Table) fromIndexLocked(name string) uint8 {
	if name == "" {
		return 0
	}
	if i, ok := t.fromI[name]; ok {
		return i
	}
	if t.fromN == len(t.froms) {
		return 0 // more than 255 neighbours: the origin is forgotten, which only costs an echo
	}
	i := uint8(t.fromN)
	t.froms[i] = name
	t.fromN++
	t.fromI[name] = i
	return i
}

// toEntry is how the table stores r.
func toEntry(r Record, from uint8) entry {
	if r.Line[r.clientOff:int(r.clientOff)+len(r.Client)] != r.Client {
		panic("location: a Record not made by NewRecord or MakeRecord")
	}
	return entry{line: r.Line, sec: r.Time.Sec, nsec: r.Time.Nsec, clientOff: r.clientOff, from: from, seq: r.Seq}
}

// deleted reports whether a stored entry is a tombstone.
func (e entry) deleted() bool { return len(e.line) > 0 && e.line[0] == 'D' }

// key is the map key of e: its client id, sharing the line's bytes.
func key(e entry, clientLen int) string {
	return e.line[e.clientOff : int(e.clientOff)+clientLen]
}

// OnChange adds a hook. Add hooks before the table is shared.
func (t *Table) OnChange(h Hook) {
	t.mu.Lock()
	t.hooks = append(t.hooks, h)
	t.mu.Unlock()
}

// Seq returns the change number of the latest change.
func (t *Table) Seq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// Locked runs f with the change lock held, so that no change happens while
// it runs; f gets the latest change number. Used to start sending changes to
// a neighbour at an exact point.
func (t *Table) Locked(f func(seq uint64)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t.seq)
}

// Restore loads recovered records without running hooks: each keeps its
// Seq, the merge rule applies between them, and the table's change number
// becomes at least seq.
//
// A recovered record timed beyond the clock skew bound or already expired
// is dropped (and counted), so that no stored time locks a client across
// restarts. MaxClients is not applied: what was acknowledged is kept.
func (t *Table) Restore(recs []Record, seq uint64) {
	b := t.bounds()
	dropped := map[error]int{}
	for _, r := range recs {
		seq = max(seq, r.Seq)
		if err := b.checkRecord(r); err != nil {
			t.stats.count(reasonOf(err))
			dropped[err]++
			continue
		}
		s := t.shard(r.Client)
		s.mu.Lock()
		old, ok := s.m[r.Client]
		if !ok || r.Wins(t.record(old, len(r.Client))) {
			e := toEntry(r, 0)
			s.m[key(e, len(r.Client))] = e
			if !ok {
				t.n.Add(1)
			}
			t.countTomb(ok && old.deleted(), e.deleted())
		}
		s.mu.Unlock()
	}
	t.mu.Lock()
	t.seq = max(t.seq, seq)
	t.mu.Unlock()
	for err, n := range dropped {
		t.log.Warn("recovered locations dropped", "reason", err.Error(), "records", n)
	}
}

// NewTable returns an empty table. Without options it bounds nothing.
func NewTable(opts ...Option) *Table {
	t := &Table{seed: maphash.MakeSeed(), fromN: 1, fromI: map[string]uint8{}, now: time.Now,
		log: slog.New(slog.DiscardHandler)}
	t.lim.Store(&Limits{})
	for _, o := range opts {
		o(t)
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]entry)
	}
	return t
}

func (t *Table) shard(client string) *shard {
	return &t.shards[maphash.String(t.seed, client)%shardCount]
}

// shardBytes is shard for a client id held in a byte slice.
func (t *Table) shardBytes(client []byte) *shard {
	return &t.shards[maphash.Bytes(t.seed, client)%shardCount]
}

// Get returns the stored record of client; a deleted client (a tombstone)
// is not found.
func (t *Table) Get(client string) (Record, bool) {
	s := t.shard(client)
	s.mu.RLock()
	e, ok := s.m[client]
	s.mu.RUnlock()
	if !ok || e.deleted() || t.expiredEntry(e) {
		return Record{}, false
	}
	return t.record(e, len(client)), true
}

// expiredEntry reports whether a stored entry is past its time to live
// (without a time to live, at no cost).
func (t *Table) expiredEntry(e entry) bool { return t.timeLimits() && t.bounds().expired(e) }

// GetBytes is Get for a client id held in a byte slice; it does not allocate.
func (t *Table) GetBytes(client []byte) (Record, bool) { return t.getBytes(client, false) }

// getBytes is GetBytes that, with tombs, also finds tombstones.
func (t *Table) getBytes(client []byte, tombs bool) (Record, bool) {
	s := t.shardBytes(client)
	s.mu.RLock()
	e, ok := s.m[string(client)]
	s.mu.RUnlock()
	if !ok || !tombs && e.deleted() || t.expiredEntry(e) {
		return Record{}, false
	}
	return t.record(e, len(client)), true
}

// Tombstones returns how many deleted clients the table remembers.
func (t *Table) Tombstones() int { return int(t.tombs.Load()) }

// countTomb updates the tombstone count for an entry that was a tombstone
// (was) and now is one (is) or not.
func (t *Table) countTomb(was, is bool) {
	switch {
	case is && !was:
		t.tombs.Add(1)
	case was && !is:
		t.tombs.Add(-1)
	}
}

// ApplyLocal offers a record made from an IAMAT this server received. It is
// stored only if it is strictly newer than the stored one. ApplyLocal returns
// the record now stored and whether it changed; a record the table's
// limits refuse is not stored, and err says why (ErrFuture, ErrFull or
// ErrExpired, or ErrDeleted when the client was deleted at or after its
// time): the client is to be answered "? <line>".
func (t *Table) ApplyLocal(r Record) (stored Record, changed bool, err error) {
	return t.apply(r, "", true)
}

// Apply offers a record that came from the neighbour named from; it is
// stored if it wins under the merge rule and the table's limits allow it
// (a refused record is dropped and counted). Apply returns the record now
// stored and whether it changed.
func (t *Table) Apply(r Record, from string) (Record, bool) {
	stored, changed, _ := t.apply(r, from, false)
	return stored, changed
}

func (t *Table) apply(r Record, from string, local bool) (Record, bool, error) {
	s := t.shard(r.Client)
	s.mu.Lock()
	e, known := s.m[r.Client]
	return t.applyLocked(s, e, known, r, from, local)
}

// applyLocked stores r in its shard s, whose lock is held and which holds e
// for r's client if known, if r beats e and the limits allow it; it
// unlocks s. A change takes the table's change lock after its shard's lock
// and keeps it while the hooks run, so that the hooks see changes in Seq
// order and one client's changes in the order they were stored; a record
// that loses never takes it.
func (t *Table) applyLocked(s *shard, e entry, known bool, r Record, from string, local bool) (Record, bool, error) {
	b := t.bounds()
	if err := b.checkRecord(r); err != nil {
		s.mu.Unlock()
		t.refuse(err)
		return Record{}, false, err
	}
	wasTomb := known && e.deleted()
	if known && b.expired(e) {
		// Expired but not yet swept: as good as absent, but its place
		// under MaxClients is taken.
		e.line, e.sec, e.nsec = "", 0, 0
	}
	if known && e.line != "" && !beats(r.Time, e.time(), local, func() bool { return r.Line > e.line }) {
		s.mu.Unlock()
		if e.deleted() {
			return Record{}, false, ErrDeleted
		}
		return t.record(e, len(r.Client)), false, nil
	}
	t.mu.Lock() // every new entry is counted under it: MaxClients is exact
	defer t.mu.Unlock()
	if !known && t.lim.Load().MaxClients > 0 && t.n.Load() >= int64(t.lim.Load().MaxClients) {
		s.mu.Unlock()
		t.refuse(ErrFull)
		return Record{}, false, ErrFull
	}
	return t.commitLocked(s, r, from, known, wasTomb), true, nil
}

// commitLocked stores r, the winner, in its shard s as the table's next
// change and runs the hooks; t.mu and s.mu are held, and it unlocks s.
// known and wasTomb say whether s held an entry for r's client, and a
// tombstone. It returns r as stored.
func (t *Table) commitLocked(s *shard, r Record, from string, known, wasTomb bool) Record {
	t.seq++
	r.Seq, r.From = t.seq, from
	e := toEntry(r, t.fromIndexLocked(from))
	s.m[key(e, len(r.Client))] = e
	if !known {
		t.n.Add(1)
	}
	t.countTomb(wasTomb, e.deleted())
	s.mu.Unlock()
	for _, h := range t.hooks {
		h(r, from)
	}
	return r
}

// Len returns the number of clients held, expired ones that Expire has
// not yet forgotten included.
func (t *Table) Len() int { return int(t.n.Load()) }

// Range calls f for every record until f returns false. It copies one shard
// at a time and calls f without holding a lock, so f may block or call back
// into t; records changed during Range may or may not be seen.
//
// Expired records are not seen, and neither are tombstones (see RangeAll).
func (t *Table) Range(f func(Record) bool) { t.rangeEntries(false, f) }

// RangeAll is Range including tombstones: what a neighbour catching up is
// sent and what a snapshot keeps. Expired records and tombstones are not
// seen, so a neighbour catching up is never sent one.
func (t *Table) RangeAll(f func(Record) bool) { t.rangeEntries(true, f) }

func (t *Table) rangeEntries(tombs bool, f func(Record) bool) {
	b := t.bounds()
	limited := t.timeLimits()
	var buf []Record
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		buf = buf[:0]
		for k, e := range s.m {
			if !tombs && e.deleted() || limited && b.expired(e) {
				continue
			}
			buf = append(buf, t.record(e, len(k)))
		}
		s.mu.RUnlock()
		for _, r := range buf {
			if !f(r) {
				return
			}
		}
	}
}
