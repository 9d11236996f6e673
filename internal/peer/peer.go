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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"herd/internal/config"
	"herd/internal/location"
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
	Secret    []byte // empty: peers are not authenticated
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
	secret    []byte
	table     *location.Table
	log       *slog.Logger
	epoch     uint64
	deltaFrom func(epoch, seq uint64) (uint64, bool)
	onPos     func(string, Pos)
	dial      func(ctx context.Context, addr string) (net.Conn, error)
	links     map[string]*link // immutable after New

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
	peer string
	addr string

	mu  sync.Mutex
	cur *conn // guarded by mu: the live connection, nil when down
	pos Pos   // guarded by mu: how far we have the neighbour's changes

	received    atomic.Int64 // updates received from the neighbour
	sent        atomic.Int64 // updates sent to the neighbour (catch-up included)
	syncBytes   atomic.Int64 // bytes of catch-up sent to the neighbour, all links so far
	syncRecords atomic.Int64 // records of catch-up sent
	reconnects  atomic.Int64
	dropped     atomic.Int64 // updates not queued because the link was full
	refused     atomic.Int64 // dials that failed the handshake
}

// conn is one established peer connection.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	peer    string
	dialer  string    // the server that dialed it
	out     chan item // changes to send, in Seq order; bounded
	base    uint64    // the table's change number when c became live: later changes go through out
	syncReq chan Pos  // the neighbour's SYNC request, from the reader to the writer
	retire  chan struct{}
	retOnce sync.Once
	dup     atomic.Bool // the neighbour said it keeps another connection
	closed  chan struct{}
	once    sync.Once
	reason  string // set once, before closed is closed
}

// retireConn asks the writer to tell the neighbour that c is a duplicate
// and close it: a replaced connection ends without making the neighbour
// redial at once.
func (c *conn) retireConn() { c.retOnce.Do(func() { close(c.retire) }) }

// item is one change queued to a neighbour.
type item struct {
	line string // the AT line
	seq  uint64
	skip bool // the change came from this neighbour: only advance its position
}

// New creates a Manager. Call Start to dial the neighbours.
func New(o Options) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		name: o.Name, cfg: o.Config, secret: o.Secret, table: o.Table,
		log: o.Logger, epoch: o.Epoch, deltaFrom: o.DeltaFrom, onPos: o.OnPosition, dial: o.Dial,
		links: make(map[string]*link, len(o.Neighbors)),
		ctx:   ctx, cancel: cancel,
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
	for _, n := range o.Neighbors {
		m.links[n.Name] = &link{peer: n.Name, addr: n.Addr, pos: o.Positions[n.Name]}
	}
	o.Table.OnChange(m.enqueue)
	return m
}

// Epoch returns the epoch this server announces to its neighbours.
func (m *Manager) Epoch() uint64 { return m.epoch }

// Start dials every neighbour that has an address at once, and keeps
// redialing each while it is down, until Close.
func (m *Manager) Start() {
	for _, l := range m.links {
		if l.addr != "" && m.track() {
			go m.dialLoop(l)
		}
	}
}

// Close drops every link and stops dialing; it returns when all of the
// Manager's goroutines have ended.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	for _, l := range m.links {
		l.mu.Lock()
		c := l.cur
		l.mu.Unlock()
		if c != nil {
			c.close("server shutting down")
		}
	}
	m.wg.Wait()
}

// enqueue is the table's change hook: it queues every change to every
// live link, in change order, except that a neighbour is not sent back what
// came from it. It never blocks: a neighbour whose queue is full is dropped,
// to catch up when it reconnects.
func (m *Manager) enqueue(rec location.Record, from string) {
	for name, l := range m.links {
		l.mu.Lock()
		c := l.cur
		l.mu.Unlock()
		if c == nil {
			continue
		}
		select {
		case c.out <- item{line: rec.Line, seq: rec.Seq, skip: name == from}:
		default:
			l.dropped.Add(1)
			c.close("outbound queue full: neighbour too slow")
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
	Reconnects int64 // connections established
	Dropped    int64 // updates dropped because the queue was full
	Refused    int64 // dials whose handshake failed (wrong secret, wrong name, ...)
	Pos        Pos   // how far this server has the neighbour's changes
	// SyncBytes and SyncRecords count the catch-up sent to the neighbour
	// over all connections so far.
	SyncBytes, SyncRecords int64
	// Received and Sent count updates (AT lines) over all connections.
	Received, Sent int64
}

// Links returns the state of every link, in no particular order.
func (m *Manager) Links() []LinkState {
	out := make([]LinkState, 0, len(m.links))
	for _, l := range m.links {
		l.mu.Lock()
		c, pos := l.cur, l.pos
		l.mu.Unlock()
		s := LinkState{Peer: l.peer, Reconnects: l.reconnects.Load(), Dropped: l.dropped.Load(), Refused: l.refused.Load(),
			Pos: pos, SyncBytes: l.syncBytes.Load(), SyncRecords: l.syncRecords.Load(),
			Received: l.received.Load(), Sent: l.sent.Load()}
		if c != nil {
			s.Up, s.Dialer, s.Remote, s.Queued = true, c.dialer, c.nc.RemoteAddr().String(), len(c.out)
		}
		out = append(out, s)
	}
	return out
}

// Accept runs the acceptor's side of the handshake on a connection whose
// first line, hello, has been read from r, and if it succeeds serves the
// link until it ends. If the handshake is rejected, Accept returns a
// *Rejected error carrying the line that failed, and the caller decides what
// becomes of the connection (a client port treats it as a client). Other
// errors mean the connection is unusable; Accept does not close nc then.
func (m *Manager) Accept(nc net.Conn, r *bufio.Reader, hello []byte) error {
	from, err := m.acceptHandshake(nc, r, trimEOL(hello))
	if err != nil {
		var rej *errRejected
		if errors.As(err, &rej) {
			m.log.Warn("peer handshake rejected", "remote", nc.RemoteAddr().String(), "reason", rej.reason)
			return &Rejected{Line: rej.line, Reason: rej.reason}
		}
		return err
	}
	if !m.track() {
		return nil
	}
	defer m.wg.Done()
	m.run(m.links[from], nc, r, from)
	return nil
}

// Rejected is returned by Accept for a connection that is not a peer.
type Rejected struct {
	Line   string // the line that failed the handshake
	Reason string
}

func (e *Rejected) Error() string { return "not a peer: " + e.Reason }

func trimEOL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// dialLoop keeps one neighbour connected: it dials at once, waits while the
// link is up, and redials with capped, jittered back-off while it is down.
func (m *Manager) dialLoop(l *link) {
	defer m.wg.Done()
	const base = 20 * time.Millisecond
	wait := time.Duration(0)
	failures := 0
	for {
		if c := l.current(); c != nil {
			select {
			case <-c.closed:
				// Redial at once, unless the neighbour closed it as a
				// duplicate: then its own connection is on the way.
				wait, failures = 0, 0
				if c.dup.Load() {
					wait = 100 * time.Millisecond
				}
				continue
			case <-m.ctx.Done():
				return
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait/2 + rand.N(wait/2+1))
			select {
			case <-t.C:
			case <-m.ctx.Done():
				t.Stop()
				return
			}
		}
		if l.current() != nil {
			continue
		}
		err := m.dialOnce(l)
		if err == nil {
			wait, failures = 0, 0
			continue
		}
		if m.ctx.Err() != nil {
			return
		}
		failures++
		// Log the first failure and then every 30th, so a long outage does not flood the log.
		if failures == 1 || failures%30 == 0 {
			m.log.Info("cannot reach neighbour", "peer", l.peer, "addr", l.addr, "err", err.Error(), "attempts", failures)
		}
		wait = min(max(2*wait, base), m.cfg.RetryMax.D)
	}
}

// dialOnce connects, handshakes and, on success, starts serving the link in
// new goroutines.
func (m *Manager) dialOnce(l *link) error {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout.D)
	nc, err := m.dial(ctx, l.addr)
	cancel()
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	if err := m.dialHandshake(nc, r, l.peer); err != nil {
		nc.Close()
		l.refused.Add(1)
		m.log.Warn("peer handshake failed", "peer", l.peer, "addr", l.addr, "err", err.Error())
		return err
	}
	if !m.track() {
		nc.Close()
		return nil
	}
	go func() {
		defer m.wg.Done()
		m.run(l, nc, r, m.name)
	}()
	return nil
}

func (l *link) current() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// run registers an authenticated connection as the link's live one (or
// drops it as a duplicate), then serves it until it fails.
func (m *Manager) run(l *link, nc net.Conn, r *bufio.Reader, dialer string) {
	c := &conn{nc: nc, r: r, peer: l.peer, dialer: dialer, out: make(chan item, m.cfg.QueueSize),
		syncReq: make(chan Pos, 1), retire: make(chan struct{}), closed: make(chan struct{})}
	// Registering under the table's change lock splits the changes exactly:
	// up to c.base they are sent by catch-up, after it through c.out.
	var ok, replaced bool
	m.table.Locked(func(seq uint64) {
		c.base = seq
		ok, replaced = m.register(l, c)
	})
	if !ok {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(nc, "DUPLICATE\n")
		nc.Close()
		return
	}
	if m.ctx.Err() != nil { // Close may have missed c
		c.close("server shutting down")
	}
	if replaced {
		m.log.Debug("peer connection replaced by a newer one", "peer", l.peer, "remote", nc.RemoteAddr().String(), "dialer", dialer)
	} else {
		m.log.Info("peer link up", "peer", l.peer, "remote", nc.RemoteAddr().String(), "dialer", dialer)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.writeLoop(l, c)
	}()
	m.readLoop(l, c)
	<-done
	nc.Close()
	l.mu.Lock()
	wasLive := l.cur == c
	if wasLive {
		l.cur = nil
	}
	l.mu.Unlock()
	if wasLive && !c.dup.Load() {
		m.log.Info("peer link down", "peer", l.peer, "remote", nc.RemoteAddr().String(), "reason", c.reason)
	} else {
		m.log.Debug("peer connection closed", "peer", l.peer, "remote", nc.RemoteAddr().String(), "reason", c.reason)
	}
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
	l.mu.Unlock()
	if old != nil {
		old.retireConn()
		return true, true
	}
	l.reconnects.Add(1)
	return true, false
}

func (c *conn) close(reason string) {
	c.once.Do(func() {
		c.reason = reason
		close(c.closed)
		c.nc.Close()
	})
}

// readLoop applies the neighbour's updates until the connection fails.
func (m *Manager) readLoop(l *link, c *conn) {
	var epoch uint64 // the neighbour's epoch, once it has sent SYNCED
	var deadlineSet time.Time
	for lines := 0; ; lines++ {
		// Refreshed at most every DeadAfter/8, and the clock read only
		// before a read that may block or every 64 lines: both cost more
		// than a line.
		if c.r.Buffered() == 0 || lines%64 == 0 {
			if now := time.Now(); now.Sub(deadlineSet) > m.cfg.DeadAfter.D/8 {
				c.nc.SetReadDeadline(now.Add(m.cfg.DeadAfter.D))
				deadlineSet = now
			}
		}
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				c.close("line too long from neighbour")
			case errors.Is(err, io.EOF):
				c.close("closed by neighbour")
			case errors.Is(err, net.ErrClosed):
				c.close("closed")
			default:
				c.close(err.Error())
			}
			return
		}
		msg, err := parseMessage(line)
		if err != nil {
			m.log.Warn("bad message from neighbour", "peer", l.peer, "line", trimEOL(line), "err", err.Error())
			continue
		}
		switch msg.kind {
		case msgAT:
			l.received.Add(1)
			m.table.Offer(msg.line, msg.client, msg.time, l.peer)
		case msgSync:
			select {
			case c.syncReq <- Pos{msg.epoch, msg.seq}:
			default: // a second SYNC on one connection is ignored
			}
		case msgSynced:
			epoch = msg.epoch
			m.setPos(l, Pos{msg.epoch, msg.seq})
		case msgSeq:
			if epoch != 0 {
				m.setPos(l, Pos{epoch, msg.seq})
			}
		case msgDuplicate:
			c.dup.Store(true)
			c.close("duplicate: the neighbour keeps another connection")
			return
		}
	}
}

func (m *Manager) setPos(l *link, p Pos) {
	l.mu.Lock()
	l.pos = p
	l.mu.Unlock()
	if m.onPos != nil {
		m.onPos(l.peer, p)
	}
}

// writeLoop asks the neighbour for what this server missed, sends it what
// it missed, then sends the queued changes, with a PING when idle.
func (m *Manager) writeLoop(l *link, c *conn) {
	cw := &countingWriter{w: c.nc}
	w := bufio.NewWriterSize(cw, 64<<10)
	fail := func(err error) { c.close("write: " + err.Error()) }
	deadline := func() { c.nc.SetWriteDeadline(time.Now().Add(m.cfg.WriteTimeout.D)) }
	deadline()
	l.mu.Lock()
	pos := l.pos
	l.mu.Unlock()
	fmt.Fprintf(w, "SYNC %d %d\n", pos.Epoch, pos.Seq)
	if err := w.Flush(); err != nil {
		fail(err)
		return
	}
	var req Pos
	t := time.NewTimer(m.cfg.DeadAfter.D)
	select {
	case req = <-c.syncReq:
		t.Stop()
	case <-t.C:
		c.close("no SYNC from neighbour")
		return
	case <-c.retire:
		t.Stop()
		m.retire(w, c)
		return
	case <-c.closed:
		t.Stop()
		return
	}
	from, ok := m.deltaFrom(req.Epoch, req.Seq)
	if !ok {
		from = 0 // not our history: send everything
	}
	// A position past base is real when another connection to the same
	// neighbour delivered more meanwhile; what follows base comes through
	// c.out anyway.
	from = min(from, c.base)
	start := cw.n
	var werr error
	sent := 0
	m.table.Range(func(r location.Record) bool {
		if r.Seq <= from || r.Seq > c.base || r.From == c.peer {
			return true // the neighbour has it, it came from there, or it comes through c.out
		}
		if werr == nil {
			_, werr = w.WriteString(r.Line)
		}
		if werr == nil {
			werr = w.WriteByte('\n')
		}
		if sent++; sent%1024 == 0 {
			deadline()
		}
		return werr == nil
	})
	if werr == nil {
		fmt.Fprintf(w, "SYNCED %d %d\n", m.epoch, c.base)
		werr = w.Flush()
	}
	if werr != nil {
		fail(werr)
		return
	}
	l.syncBytes.Add(cw.n - start)
	l.syncRecords.Add(int64(sent))
	l.sent.Add(int64(sent))
	m.log.Info("caught up neighbour", "peer", c.peer, "records", sent, "bytes", cw.n-start, "full", from == 0, "from_seq", from, "to_seq", c.base)
	hb := time.NewTicker(m.cfg.Heartbeat.D)
	defer hb.Stop()
	var lastFlush time.Time
	var lastBatch int64
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	for {
		select {
		case it := <-c.out:
			deadline()
			n, last := writeItem(w, it, 0)
			// Drain what is already queued before one flush.
			for k := len(c.out); k > 0; k-- {
				n, last = writeItem(w, <-c.out, n)
			}
			// A busy link (its last write carried several updates, less
			// than coalesce ago) collects what arrives until then, so one
			// write(2) carries many updates. A quiet link writes at once.
			if wait := coalesce - time.Since(lastFlush); wait > 0 && lastBatch > 1 && n < 256 {
				hold.Reset(wait)
			collect:
				for n < 256 {
					select {
					case it := <-c.out:
						n, last = writeItem(w, it, n)
					case <-hold.C:
						break collect
					}
				}
				hold.Stop()
			}
			l.sent.Add(n)
			w.WriteString("SEQ ")
			w.Write(strconv.AppendUint(nil, last, 10))
			w.WriteByte('\n')
			if err := w.Flush(); err != nil {
				fail(err)
				return
			}
			lastFlush, lastBatch = time.Now(), n
		case <-hb.C:
			deadline()
			w.WriteString("PING\n")
			if err := w.Flush(); err != nil {
				fail(err)
				return
			}
		case <-c.retire:
			m.retire(w, c)
			return
		case <-c.closed:
			return
		}
	}
}

// retire tells the neighbour that c is a duplicate and closes it.
func (m *Manager) retire(w *bufio.Writer, c *conn) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	w.WriteString("DUPLICATE\n")
	w.Flush()
	c.close("replaced by a newer connection")
}

// coalesce is the shortest time between two writes of a busy link.
const coalesce = 600 * time.Microsecond

// writeItem writes one queued change (unless it goes back where it came
// from) and returns the count of lines written so far and its Seq.
func writeItem(w *bufio.Writer, it item, n int64) (int64, uint64) {
	if !it.skip {
		w.WriteString(it.line)
		w.WriteByte('\n')
		n++
	}
	return n, it.seq
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
