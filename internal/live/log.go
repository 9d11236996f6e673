// Package live is a server's recent history of changes, as the streams of
// the HTTP API (GET /v1/stream) and the status page read it: every
// location, deletion and expiry the server applies, in change order, each
// with where the client is now and where it was before (for fences), in a
// bounded ring that any number of readers follow without ever slowing the
// writer.
package live

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"herd/internal/geo"
	"herd/internal/location"
)

// Kind is what happened to a client.
type Kind uint8

// The kinds of events.
const (
	Location Kind = iota + 1 // the client has a new location (Record is its AT record)
	Deleted                  // the client was deleted herd-wide (Record is the tombstone)
	Expired                  // the client's location expired ([locations] ttl; Record is the record forgotten)
)

// Pos is a position in a server's change log: after change Seq, and for
// expiry (which is not a change and takes no change number) the Sub-th
// expiry after it. Positions order by Seq, then Sub.
type Pos struct {
	Seq uint64
	Sub uint32
}

// Less reports whether p comes before q.
func (p Pos) Less(q Pos) bool { return p.Seq < q.Seq || p.Seq == q.Seq && p.Sub < q.Sub }

// Event is one entry of the log. It is immutable once appended.
type Event struct {
	Pos    Pos
	Kind   Kind
	Record location.Record
	From   string    // the neighbour the change came from; empty for this server's own clients
	Time   time.Time // when the server applied it
	// Point is where the client is now (for Location); Prev where it was
	// before, if HadPrev: on this server, whatever the change was.
	Point, Prev geo.Point
	HadPrev     bool

	once, frameOnce sync.Once
	data, frame     []byte // see Data and Frame
}

// Data returns f(e), computed once per event however many readers ask
// (the JSON of the event, shared by every stream).
func (e *Event) Data(f func(*Event) []byte) []byte {
	e.once.Do(func() { e.data = f(e) })
	return e.data
}

// Frame is Data for a second value (the whole event as most streams
// write it).
func (e *Event) Frame(f func(*Event) []byte) []byte {
	e.frameOnce.Do(func() { e.frame = f(e) })
	return e.frame
}

// Log is a bounded ring of the latest events, safe for concurrent use.
type Log struct {
	epoch uint64 // immutable: the history of change numbers the positions belong to

	mu    sync.Mutex
	ring  []*Event      // guarded by mu; fixed length
	head  uint64        // guarded by mu: events ever appended; the next goes to ring[head%len]
	floor Pos           // guarded by mu: every event after floor is in the ring
	last  Pos           // guarded by mu: the position of the latest event (floor when none)
	wake  chan struct{} // guarded by mu: closed at the next append, if a reader took it
	woken bool          // guarded by mu: wake was handed out
}

// NewLog returns a log keeping the latest size events of history epoch,
// whose latest change so far is seq.
func NewLog(size int, epoch, seq uint64) *Log {
	p := Pos{Seq: seq}
	return &Log{epoch: epoch, ring: make([]*Event, max(size, 1)), floor: p, last: p, wake: make(chan struct{})}
}

// Append adds an event. A change (Location, Deleted) keeps its record's
// Seq; an expiry gets the next Sub after the latest position.
func (l *Log) Append(e *Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Kind == Expired {
		e.Pos = Pos{Seq: l.last.Seq, Sub: l.last.Sub + 1}
	} else {
		e.Pos = Pos{Seq: e.Record.Seq}
	}
	i := l.head % uint64(len(l.ring))
	if old := l.ring[i]; old != nil {
		l.floor = old.Pos
	}
	l.ring[i] = e
	l.head++
	l.last = e.Pos
	if l.woken {
		close(l.wake)
		l.wake, l.woken = make(chan struct{}), false
	}
}

// Wait returns a channel closed at the next Append. Take it before Read,
// so that no event falls between a Read that found nothing and the wait.
func (l *Log) Wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.woken = true
	return l.wake
}

// Head returns the cursor after the latest event, and its position.
func (l *Log) Head() (cursor uint64, p Pos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head, l.last
}

// Read appends to dst the events from cursor on, at most n of them, and
// returns them, the cursor after them and how many more are waiting. ok is
// false when events after cursor have already left the ring: the reader
// fell too far behind.
func (l *Log) Read(cursor uint64, dst []*Event, n int) (events []*Event, next uint64, behind uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := uint64(len(l.ring))
	if l.head-cursor > size {
		return dst, cursor, l.head - cursor, false
	}
	for cursor < l.head && n > 0 {
		dst = append(dst, l.ring[cursor%size])
		cursor++
		n--
	}
	return dst, cursor, l.head - cursor, true
}

// After returns the cursor of the first event after position p, or false
// when the log no longer holds every event after p (or p is not a position
// of this history).
func (l *Log) After(p Pos) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.Less(l.floor) || l.last.Less(p) {
		return 0, false
	}
	size := uint64(len(l.ring))
	held := min(l.head, size)
	// Events are in position order: find the first one after p.
	lo, hi := l.head-held, l.head
	for lo < hi {
		mid := lo + (hi-lo)/2
		if p.Less(l.ring[mid%size].Pos) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, true
}

// Latest returns up to n of the latest events, newest first, for which keep
// returns true.
func (l *Log) Latest(n int, keep func(*Event) bool) []*Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := uint64(len(l.ring))
	var out []*Event
	for c := l.head; c > 0 && l.head-c < size && len(out) < n; c-- {
		if e := l.ring[(c-1)%size]; keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// ID is the text of p as an event id: "<epoch>-<seq>", and
// "<epoch>-<seq>.<sub>" for an expiry; the epoch, in hex, names the history
// (a server that restarts without its data directory starts a new one).
func (l *Log) ID(p Pos) string {
	s := strconv.FormatUint(l.epoch, 16) + "-" + strconv.FormatUint(p.Seq, 10)
	if p.Sub != 0 {
		s += "." + strconv.FormatUint(uint64(p.Sub), 10)
	}
	return s
}

// ParseID reads an event id written by ID, for this log's history.
func (l *Log) ParseID(id string) (Pos, error) {
	e, rest, ok := strings.Cut(id, "-")
	if !ok {
		return Pos{}, fmt.Errorf("bad event id %q", id)
	}
	epoch, err := strconv.ParseUint(e, 16, 64)
	if err != nil {
		return Pos{}, fmt.Errorf("bad event id %q", id)
	}
	if epoch != l.epoch {
		return Pos{}, fmt.Errorf("event id %q is of another history of this server", id)
	}
	seqText, subText, hasSub := strings.Cut(rest, ".")
	var p Pos
	if p.Seq, err = strconv.ParseUint(seqText, 10, 64); err != nil {
		return Pos{}, fmt.Errorf("bad event id %q", id)
	}
	if hasSub {
		sub, err := strconv.ParseUint(subText, 10, 32)
		if err != nil {
			return Pos{}, fmt.Errorf("bad event id %q", id)
		}
		p.Sub = uint32(sub)
	}
	return p, nil
}

// AppendID appends the text of ID(p) to dst.
func (l *Log) AppendID(dst []byte, p Pos) []byte {
	dst = strconv.AppendUint(dst, l.epoch, 16)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, p.Seq, 10)
	if p.Sub != 0 {
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uint64(p.Sub), 10)
	}
	return dst
}
