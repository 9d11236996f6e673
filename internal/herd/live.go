package herd

import (
	"github.com/prometheus/client_golang/prometheus"
	"sync"
	"sync/atomic"

	"time"

	"herd/internal/geo"
	"herd/internal/live"
	"herd/internal/location"
	"herd/internal/protocol"
	"herd/internal/status"
)

// liveHistory is how many of the latest changes a member keeps for its
// streams to resume from (Last-Event-ID) and for its status page.
const liveHistory = 1 << 16

// recentUpdates is how many updates the status page shows.
const recentUpdates = 50

// pointOf returns where an AT record puts its client. The line was checked
// when the table took it: only its location, the fifth field of
// "AT <server> <diff> <client> <location> <time>", is read.
func pointOf(r location.Record) (geo.Point, bool) {
	// Fields are separated by the protocol's ASCII white space only (a
	// client id may hold other Unicode spaces).
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' }
	line, i := r.Line, 0
	for n := 0; n < 4; n++ {
		for i < len(line) && !space(line[i]) {
			i++
		}
		for i < len(line) && space(line[i]) {
			i++
		}
	}
	j := i
	for j < len(line) && !space(line[j]) {
		j++
	}
	lat, lon, ok := protocol.ParseLocation([]byte(line[i:j]))
	return geo.Point{Lat: lat, Lon: lon}, ok
}

// indexTable puts every record of the table into the spatial index (at
// start, after the store is restored, before any change can happen).
func (m *Member) indexTable() {
	m.Table.Range(func(r location.Record) bool {
		if p, ok := pointOf(r); ok {
			m.Index.Set(r.Client, p)
		}
		return true
	})
}

// follower applies the table's changes to the spatial index and the live
// log, in change order, on its own goroutine: the table's change hook only
// queues them, so an IAMAT does not wait for the index. A reader that must
// see every change made so far (a nearby query) calls sync first, which
// waits until the follower has applied what was queued when it was called.
type follower struct {
	m      *Member
	q      chan followItem
	stop   chan struct{} // closed by close: the goroutine drains q and exits
	exited chan struct{}
	queued atomic.Uint64 // items queued; incremented in change order

	mu      sync.Mutex
	cond    *sync.Cond
	applied uint64 // guarded by mu: items applied
	closed  bool   // guarded by mu: the goroutine has exited
}

// followItem is one change or expiry to apply.
type followItem struct {
	r       location.Record
	from    string
	expired bool
}

// followQueue bounds the changes queued to the follower; when it is full
// the change hook waits, so the index is never more than this behind.
const followQueue = 1 << 14

func (m *Member) startFollower() {
	f := &follower{m: m, q: make(chan followItem, followQueue), stop: make(chan struct{}), exited: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	m.fol = f
	go f.run()
}

// enqueue queues a change (or an expiry); called in change order.
func (f *follower) enqueue(it followItem) {
	f.queued.Add(1)
	select {
	case f.q <- it:
	case <-f.stop:
	}
}

func (f *follower) run() {
	defer close(f.exited)
	for {
		select {
		case it := <-f.q:
			// The changes taken together are stamped with one time: the
			// clock is read once per batch, not in the change hook.
			n, at := uint64(1), time.Now()
			f.m.applyChange(it, at)
			for more := true; more && n < 256; {
				select {
				case it := <-f.q:
					f.m.applyChange(it, at)
					n++
				default:
					more = false
				}
			}
			f.mu.Lock()
			f.applied += n
			f.cond.Broadcast()
			f.mu.Unlock()
		case <-f.stop:
			f.mu.Lock()
			f.closed = true
			f.cond.Broadcast()
			f.mu.Unlock()
			return
		}
	}
}

// sync waits until every change queued before it was called is applied.
func (f *follower) sync() {
	target := f.queued.Load()
	f.mu.Lock()
	for f.applied < target && !f.closed {
		f.cond.Wait()
	}
	f.mu.Unlock()
}

// close stops the follower once no more changes can come.
func (f *follower) close() {
	close(f.stop)
	<-f.exited
}

// syncIndex waits until the index and the live log hold every change the
// table has made so far.
func (m *Member) syncIndex() {
	if m.fol != nil {
		m.fol.sync()
	}
}

// follow queues a change of the table for the index and the live log. It
// runs in the table's change hook, in Seq order.
func (m *Member) follow(r location.Record, from string) {
	if m.h.o.withoutLive {
		return
	}
	m.fol.enqueue(followItem{r: r, from: from})
}

// forget follows the expiry of a record (Table.ExpireFunc), like follow.
func (m *Member) forget(r location.Record) {
	if m.h.o.withoutLive {
		return
	}
	m.fol.enqueue(followItem{r: r, expired: true})
}

// applyChange keeps the spatial index in step with one change and logs it for
// the streams, as seen at time at.
func (m *Member) applyChange(it followItem, at time.Time) {
	r, from := it.r, it.from
	if it.expired {
		e := &live.Event{Kind: live.Expired, Record: r, Time: at}
		e.Prev, e.HadPrev = m.Index.Remove(r.Client)
		m.Live.Append(e)
		return
	}
	e := &live.Event{Record: r, From: from, Time: at}
	if r.Deleted() {
		e.Kind = live.Deleted
		e.Prev, e.HadPrev = m.Index.Remove(r.Client)
	} else {
		p, ok := pointOf(r)
		if !ok {
			return // the table holds only checked lines
		}
		e.Kind, e.Point = live.Location, p
		e.Prev, e.HadPrev = m.Index.Set(r.Client, p)
	}
	m.Live.Append(e)
}

// recent is the status page's latest updates, newest first: the latest
// locations in the live log of clients the server still holds at that
// location (a client deleted or expired since is not shown).
func (m *Member) recent() []status.Update {
	evs := m.Live.Latest(recentUpdates, func(e *live.Event) bool {
		if e.Kind != live.Location {
			return false
		}
		cur, ok := m.Table.Get(e.Record.Client)
		return ok && cur.Seq >= e.Record.Seq
	})
	out := make([]status.Update, len(evs))
	for i, e := range evs {
		from := e.From
		if from == "" {
			from = status.FromClient
		}
		out[i] = status.Update{Time: e.Time, Client: e.Record.Client, Line: e.Record.Line, From: from}
	}
	return out
}

// registerLiveMetrics adds the gauges of what the member remembers of
// deleted clients and holds in its index.
func (m *Member) registerLiveMetrics() {
	labels := prometheus.Labels{"server": m.Name}
	m.Metrics.Registry().MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herd_tombstones", Help: "Deleted clients this server remembers ([locations] tombstone_ttl).", ConstLabels: labels,
		}, func() float64 { return float64(m.Table.Tombstones()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herd_index_clients", Help: "Clients in the spatial index (nearby queries and fences).", ConstLabels: labels,
		}, func() float64 { return float64(m.Index.Len()) }),
	)
}
