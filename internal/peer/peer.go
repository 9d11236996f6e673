// Package peer links a server to its neighbours: it dials them, accepts
// their connections, authenticates both sides, floods location updates along
// the links and brings a neighbour up to date when a link (re)connects.
//
// Each neighbour has at most one live connection. Either side may dial; when
// both connections come up, the one dialed by the server with the smaller
// name is kept on both sides, and a newer connection from the same dialer
// replaces an older one (the old one is a leftover of a restart). Every
// connection has one reader goroutine and one writer goroutine; updates for
// a neighbour go through a bounded queue, and a neighbour whose queue fills
// is dropped and brought up to date when it reconnects, so a slow neighbour
// never slows anyone else.
package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/protocol"
)

// Neighbor is one configured link.
type Neighbor struct {
	Name string
	Addr string // where to dial it; empty: only accept its connections
}

// Options configures a Manager.
type Options struct {
	Name      string // this server
	Neighbors []Neighbor
	Config    config.PeerConfig
	Auth      Auth // how links are authenticated
	Table     *location.Table
	Logger    *slog.Logger
	// Epoch identifies this server's history of change numbers (see
	// docs/PROTOCOL.md, "Catch-up"). Zero: a random one.
	Epoch uint64
	// DeltaFrom tells whether the changes a neighbour has seen, (epoch, seq),
	// belong to this server's history, and from which change number the
	// neighbour must be sent changes. Nil: only the current Epoch is known.
	DeltaFrom func(epoch, seq uint64) (from uint64, ok bool)
	// Positions are how far this server had received each neighbour's
	// changes (recovered from disk); missing neighbours start from nothing.
	Positions map[string]Pos
	// OnPosition, if set, is told each time a neighbour's position advances
	// (to record it on disk). It is called from the link's reader goroutine.
	OnPosition func(peer string, pos Pos)
	// Dial, if set, replaces net.Dialer (tests).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Pos is how far a server has received a neighbour's changes: every change
// of the neighbour's history Epoch up to Seq.
type Pos struct{ Epoch, Seq uint64 }

// Manager owns the links of one server.
type Manager struct {
	name      string
	cfg       config.PeerConfig
	auth      Auth
	table     *location.Table
	log       *slog.Logger
	epoch     uint64
	deltaFrom func(epoch, seq uint64) (uint64, bool)
	onPos     func(string, Pos)
	dial      func(ctx context.Context, addr string) (net.Conn, error)
	linksMu   sync.Mutex                       // serialises SetNeighbors
	links     atomic.Pointer[map[string]*link] // copy on write: replaced whole by SetNeighbors
	started   bool                             // guarded by mu: Start was called
	admission admission                        // handshakes in progress
	refused   refusals                         // handshakes refused, by reason

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex     // guards closed and wg.Add
	closed bool           // set by Close
	wg     sync.WaitGroup // every goroutine and Accept call of the Manager
}

// track counts one more goroutine unless the Manager is closed.
func (m *Manager) track() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	return true
}

// link is the state of one neighbour.
type link struct {
	peer   string
	ctx    context.Context // cancelled when the link is removed or the Manager closes
	cancel context.CancelFunc

	mu      sync.Mutex
	addr    string // guarded by mu: where to dial the neighbour; empty: only accept
	dialing bool   // guarded by mu: a dial loop runs for the link
	cur     *conn  // guarded by mu: the live connection, nil when down
	pos     Pos    // guarded by mu: how far we have the neighbour's changes

	received    atomic.Int64             // updates received from the neighbour
	sent        atomic.Int64             // updates sent to the neighbour (catch-up included)
	syncBytes   atomic.Int64             // bytes of catch-up sent to the neighbour, all links so far
	syncRecords atomic.Int64             // records of catch-up sent
	reconnects  atomic.Int64             // connections established after the first
	everUp      bool                     // guarded by mu: a connection has been live
	dupEnded    bool                     // guarded by mu: the last live connection ended as a duplicate: the link was not down
	dropped     atomic.Int64             // updates not queued because the link was full
	refused     atomic.Int64             // dials that failed the handshake
	downs       [numReasons]atomic.Int64 // live connections closed, by reason
}

// conn is one established peer connection.
type conn struct {
	nc      net.Conn
	r       *lineReader
	key     []byte // authenticates every message; nil without a shared secret
	peer    string
	dialer  string    // the server that dialed it
	out     *outQueue // changes to send, in Seq order; bounded
	base    uint64    // the table's change number when c became live: later changes go through out
	syncReq chan Pos  // the neighbour's SYNC request, from the reader to the writer
	retire  chan struct{}
	retOnce sync.Once
	dup     atomic.Bool // the neighbour said it keeps another connection
	closed  chan struct{}
	once    sync.Once
	reason  CloseReason // set once, before closed is closed
	detail  string      // what happened, for the log; set with reason
}

// retireConn asks the writer to tell the neighbour that c is a duplicate
// and close it: a replaced connection ends without making the neighbour
// redial at once.
func (c *conn) retireConn() { c.retOnce.Do(func() { close(c.retire) }) }

// item is one change queued to a neighbour.
type item struct {
	line string // the AT line
	seq  uint64
}

// New creates a Manager. Call Start to dial the neighbours.
func New(o Options) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		name: o.Name, cfg: o.Config, auth: o.Auth, table: o.Table,
		log: o.Logger, epoch: o.Epoch, deltaFrom: o.DeltaFrom, onPos: o.OnPosition, dial: o.Dial,
		ctx: ctx, cancel: cancel,
	}
	for m.epoch == 0 {
		m.epoch = rand.Uint64()
	}
	if m.deltaFrom == nil {
		m.deltaFrom = func(epoch, seq uint64) (uint64, bool) { return seq, epoch == m.epoch }
	}
	if m.dial == nil {
		d := &net.Dialer{Timeout: o.Config.DialTimeout.D, KeepAlive: 15 * time.Second}
		m.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	links := make(map[string]*link, len(o.Neighbors))
	for _, n := range o.Neighbors {
		links[n.Name] = m.newLink(n, o.Positions[n.Name])
	}
	m.links.Store(&links)
	return m
}

func (m *Manager) newLink(n Neighbor, pos Pos) *link {
	ctx, cancel := context.WithCancel(m.ctx)
	return &link{peer: n.Name, addr: n.Addr, pos: pos, ctx: ctx, cancel: cancel}
}

// linkMap returns the current links; the map must not be changed.
func (m *Manager) linkMap() map[string]*link { return *m.links.Load() }

// link returns the link to the neighbour called name, or nil.
func (m *Manager) link(name string) *link { return m.linkMap()[name] }

// SetNeighbors makes ns this server's links, while it runs: a new
// neighbour is dialed at once (if it has an address), a removed one is
// disconnected and no longer accepted, and a changed address is dialed
// from the next attempt on. It returns the names added and removed.
func (m *Manager) SetNeighbors(ns []Neighbor) (added, removed []string) {
	m.linksMu.Lock()
	defer m.linksMu.Unlock()
	old := m.linkMap()
	next := make(map[string]*link, len(ns))
	for _, n := range ns {
		l, ok := old[n.Name]
		if !ok {
			l = m.newLink(n, Pos{})
			added = append(added, n.Name)
		} else {
			l.mu.Lock()
			l.addr = n.Addr
			l.mu.Unlock()
		}
		next[n.Name] = l
	}
	m.links.Store(&next)
	for name, l := range old {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
			l.cancel()
			if c := l.current(); c != nil {
				c.close(CloseRemoved, "link removed from the config")
			}
		}
	}
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if started {
		for _, l := range next {
			m.startDialing(l)
		}
	}
	return added, removed
}

// startDialing starts l's dial loop unless it runs, or l has no address.
func (m *Manager) startDialing(l *link) {
	l.mu.Lock()
	start := !l.dialing && l.addr != ""
	l.dialing = l.dialing || start
	l.mu.Unlock()
	if start && m.track() {
		go m.dialLoop(l)
	}
}

// Epoch returns the epoch this server announces to its neighbours.
func (m *Manager) Epoch() uint64 { return m.epoch }

// Start dials every neighbour that has an address at once, and keeps
// redialing each while it is down, until Close.
func (m *Manager) Start() {
	m.linksMu.Lock()
	defer m.linksMu.Unlock()
	m.mu.Lock()
	m.started = true
	m.mu.Unlock()
	for _, l := range m.linkMap() {
		m.startDialing(l)
	}
}

// Close drops every link and stops dialing; it returns when all of the
// Manager's goroutines have ended.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	for _, l := range m.linkMap() {
		l.mu.Lock()
		c := l.cur
		l.mu.Unlock()
		if c != nil {
			c.close(CloseShutdown, "server shutting down")
		}
	}
	m.wg.Wait()
}

// Enqueue queues a change of the table to every live link; the table's
// change hook must call it for every change, in change order. A neighbour
// is not sent back what came from it (from names the neighbour, or is
// empty). It never blocks: a neighbour whose queue is full is dropped, to
// catch up when it reconnects.
func (m *Manager) Enqueue(rec location.Record, from string) {
	for name, l := range m.linkMap() {
		l.mu.Lock()
		c := l.cur
		l.mu.Unlock()
		if c == nil {
			continue
		}
		if name == from {
			c.out.pass(rec.Seq) // not sent back where it came from
			continue
		}
		if !c.out.push(item{line: rec.Line, seq: rec.Seq}) {
			l.dropped.Add(1)
			c.close(CloseQueueFull, "outbound queue full: neighbour too slow")
		}
	}
}

// LinkState describes one neighbour for status displays.
type LinkState struct {
	Peer       string
	Up         bool
	Dialer     string // who dialed the live connection
	Remote     string // remote address of the live connection
	Queued     int
	Reconnects int64 // connections established after the first (a link that never failed has 0)
	Dropped    int64 // updates dropped because the queue was full
	Refused    int64 // dials whose handshake failed (wrong secret, wrong name, ...)
	Pos        Pos   // how far this server has the neighbour's changes
	// SyncBytes and SyncRecords count the catch-up sent to the neighbour
	// over all connections so far.
	SyncBytes, SyncRecords int64
	// Received and Sent count updates (AT lines) over all connections.
	Received, Sent int64
	// Down counts live connections that ended, indexed by CloseReason.
	Down [numReasons]int64
}

// Links returns the state of every link, in no particular order.
func (m *Manager) Links() []LinkState {
	links := m.linkMap()
	out := make([]LinkState, 0, len(links))
	for _, l := range links {
		l.mu.Lock()
		c, pos := l.cur, l.pos
		l.mu.Unlock()
		s := LinkState{Peer: l.peer, Reconnects: l.reconnects.Load(), Dropped: l.dropped.Load(), Refused: l.refused.Load(),
			Pos: pos, SyncBytes: l.syncBytes.Load(), SyncRecords: l.syncRecords.Load(),
			Received: l.received.Load(), Sent: l.sent.Load()}
		for i := range s.Down {
			s.Down[i] = l.downs[i].Load()
		}
		if c != nil {
			s.Up, s.Dialer, s.Remote, s.Queued = true, c.dialer, c.nc.RemoteAddr().String(), c.out.len()
		}
		out = append(out, s)
	}
	return out
}

func (l *link) current() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// messageBufSize is the read buffer of an authenticated link: the longest
// record, its code and line ending.
const messageBufSize = protocol.MaxRecordBytes + 2*macLen + 8

// run serves an authenticated connection until it fails, unless it is
// dropped as a duplicate. r holds what was read past the handshake; key
// authenticates messages (nil: none).
func (m *Manager) run(l *link, nc net.Conn, r *bufio.Reader, dialer string, key []byte) {
	if c := m.attach(l, nc, r, dialer, key); c != nil {
		m.serve(l, c)
	}
}

// attach registers an authenticated connection as the link's live one and
// returns it, or drops it as a duplicate (see the package comment) and
// returns nil. Once it returns, the link's current connection is settled:
// a dialer that checks it next does not dial again.
func (m *Manager) attach(l *link, nc net.Conn, r *bufio.Reader, dialer string, key []byte) *conn {
	c := &conn{nc: nc, key: key, peer: l.peer, dialer: dialer, out: newOutQueue(m.cfg.QueueSize),
		syncReq: make(chan Pos, 1), retire: make(chan struct{}), closed: make(chan struct{})}
	c.r = &lineReader{r: rebuffer(r, nc, messageBufSize)}
	if key != nil {
		c.r.mac = newMacer(key, c.direction(m.name))
	}
	// Registering under the table's change lock splits the changes exactly:
	// up to c.base they are sent by catch-up, after it through c.out.
	var ok, replaced bool
	m.table.Locked(func(seq uint64) {
		c.base = seq
		ok, replaced = m.register(l, c)
	})
	if !ok {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		lw := c.writer(m.name, bufio.NewWriterSize(nc, 64))
		lw.lineString("DUPLICATE")
		lw.w.Flush()
		nc.Close()
		return nil
	}
	switch { // Close or SetNeighbors may have missed c
	case m.ctx.Err() != nil:
		c.close(CloseShutdown, "server shutting down")
	case l.ctx.Err() != nil:
		c.close(CloseRemoved, "link removed from the config")
	}
	l.mu.Lock()
	settling := l.dupEnded // both sides dialed at once: the link was up all along
	l.dupEnded = false
	l.mu.Unlock()
	switch {
	case replaced:
		m.log.Debug("peer connection replaced by a newer one", "peer", l.peer, "remote", nc.RemoteAddr().String(), "dialer", dialer)
	case settling:
		m.log.Debug("peer link up again after a duplicate", "peer", l.peer, "remote", nc.RemoteAddr().String(), "dialer", dialer)
	default:
		m.log.Info("peer link up", "peer", l.peer, "remote", nc.RemoteAddr().String(), "dialer", dialer, "auth", m.auth.Mode())
	}
	return c
}

// serve runs c's writer and reader until the connection fails, then
// retires it from the link.
func (m *Manager) serve(l *link, c *conn) {
	nc := c.nc
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.writeLoop(l, c)
	}()
	m.readLoop(l, c)
	<-done
	nc.Close()
	duplicate := c.reason == CloseReplaced || c.reason == CloseDuplicate || c.dup.Load()
	l.mu.Lock()
	if l.cur == c {
		l.cur = nil
		l.dupEnded = duplicate
	}
	l.mu.Unlock()
	// Every connection that got here was the live one; unless it ended
	// because another took its place, the link went down (even if a
	// redial has already replaced it).
	if !duplicate {
		l.downs[c.reason].Add(1)
		level := slog.LevelInfo
		switch c.reason {
		case CloseBadMAC, CloseLineTooLong:
			level = slog.LevelWarn
		case CloseShutdown:
			level = slog.LevelDebug // this server is stopping: it says so once
		}
		m.log.Log(context.Background(), level, "peer link down", "peer", l.peer, "remote", nc.RemoteAddr().String(), "reason", c.reason.String(), "detail", c.detail)
	} else {
		m.log.Debug("peer connection closed", "peer", l.peer, "remote", nc.RemoteAddr().String(), "reason", c.reason.String(), "detail", c.detail)
	}
}

// direction is the code direction of the messages c receives: 'd' for
// those the dialer sends, 'a' for the acceptor's.
func (c *conn) direction(self string) byte {
	if c.dialer == self {
		return 'a' // we dialed: we receive the acceptor's
	}
	return 'd'
}

// writer returns the message writer of c on w, sealing each message when
// the link has a key. self is this server's name.
func (c *conn) writer(self string, w *bufio.Writer) *lineWriter {
	lw := &lineWriter{w: w}
	if c.key != nil {
		dir := byte('a')
		if c.dialer == self {
			dir = 'd'
		}
		lw.mac = newMacer(c.key, dir)
	}
	return lw
}

// rebuffer returns a reader of size bytes over nc that first yields what r
// has buffered: the small handshake buffer is replaced by the link's.
func rebuffer(r *bufio.Reader, nc net.Conn, size int) *bufio.Reader {
	if r.Size() >= size {
		return r
	}
	if n := r.Buffered(); n > 0 {
		rest, _ := r.Peek(n)
		return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), nc), size)
	}
	return bufio.NewReaderSize(nc, size)
}

// register makes c the link's live connection unless the live one should
// be kept (see the package comment). It reports whether c was taken and
// whether it replaced a live connection.
func (m *Manager) register(l *link, c *conn) (ok, replaced bool) {
	keeper := min(m.name, l.peer) // whose dialed connection wins a tie
	l.mu.Lock()
	old := l.cur
	if old != nil && old.dialer != c.dialer && old.dialer == keeper {
		l.mu.Unlock()
		m.log.Debug("duplicate peer connection dropped", "peer", l.peer, "dialer", c.dialer)
		return false, false
	}
	l.cur = c
	first := !l.everUp
	l.everUp = true
	l.mu.Unlock()
	if old != nil {
		old.retireConn()
		return true, true
	}
	if !first {
		l.reconnects.Add(1)
	}
	return true, false
}

// close ends c for reason; the first reason given is the one kept.
func (c *conn) close(reason CloseReason, detail string) {
	c.once.Do(func() {
		c.reason, c.detail = reason, detail
		close(c.closed)
		c.nc.Close()
	})
}

// readLoop applies the neighbour's updates until the connection fails.
func (m *Manager) readLoop(l *link, c *conn) {
	var epoch uint64 // the neighbour's epoch, once it has sent SYNCED
	caughtUp := 0    // records received before SYNCED, then -1
	var deadlineSet time.Time
	for lines := 0; ; lines++ {
		// Refreshed at most every DeadAfter/8, and the clock read only
		// before a read that may block or every 64 lines: both cost more
		// than a line.
		if c.r.r.Buffered() == 0 || lines%64 == 0 {
			if now := time.Now(); now.Sub(deadlineSet) > m.cfg.DeadAfter.D/8 {
				c.nc.SetReadDeadline(now.Add(m.cfg.DeadAfter.D))
				deadlineSet = now
			}
		}
		line, err := c.r.next()
		if err != nil {
			switch {
			case errors.Is(err, errBadMAC):
				c.close(CloseBadMAC, "a message failed authentication: altered or injected on the wire")
			case errors.Is(err, bufio.ErrBufferFull):
				c.close(CloseLineTooLong, fmt.Sprintf("line longer than %d bytes from neighbour", messageBufSize))
			case errors.Is(err, io.EOF):
				c.close(CloseByNeighbour, "closed by neighbour")
			case errors.Is(err, net.ErrClosed):
				c.close(CloseShutdown, "closed")
			default:
				c.close(CloseReadError, err.Error())
			}
			return
		}
		msg, err := parseMessage(line)
		if err != nil {
			m.log.Warn("bad message from neighbour", "peer", l.peer, "line", string(line), "err", err.Error())
			continue
		}
		switch msg.kind {
		case msgAT:
			l.received.Add(1)
			if caughtUp >= 0 {
				caughtUp++
			}
			m.table.Offer(msg.line, msg.client, msg.time, l.peer)
		case msgSync:
			select {
			case c.syncReq <- Pos{msg.epoch, msg.seq}:
			default: // a second SYNC on one connection is ignored
			}
		case msgSynced:
			epoch = msg.epoch
			m.setPos(l, Pos{msg.epoch, msg.seq})
			if caughtUp >= 0 {
				m.log.Log(context.Background(), catchUpLevel(caughtUp), "catch-up received", "peer", l.peer, "records", caughtUp)
				caughtUp = -1
			}
		case msgSeq:
			if epoch != 0 {
				m.setPos(l, Pos{epoch, msg.seq})
			}
		case msgDuplicate:
			c.dup.Store(true)
			c.close(CloseDuplicate, "the neighbour keeps another connection")
			return
		}
	}
}

// catchUpLevel is the level of a catch-up record: one that moved nothing
// (every link at start) is not worth a line at info.
func catchUpLevel(records int) slog.Level {
	if records == 0 {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func (m *Manager) setPos(l *link, p Pos) {
	l.mu.Lock()
	l.pos = p
	l.mu.Unlock()
	if m.onPos != nil {
		m.onPos(l.peer, p)
	}
}
