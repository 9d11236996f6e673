package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"herd/internal/config"
	"herd/internal/metrics"
	"herd/internal/peer"
	"herd/internal/protocol"
)

// reply is one answer, queued in command order. A reply whose done channel
// is non-nil is being computed (a WHATSAT waiting for the places service);
// buf is valid once done is closed. A reply with alt > 0 waits for the
// store (an IAMAT): buf holds the AT line up to alt and the "? " line
// after it, and durable says which one is the answer.
type reply struct {
	buf     []byte
	done    chan struct{}
	alt     int        // > 0: the offset of the "? " line in buf
	durable chan error // capacity 1, kept with the reply: the store's answer
	cmd     string     // metrics.Cmd*: for the reply latency
	start   time.Time  // when the command was read
}

// ready reports whether the reply can be written without waiting.
func (rp *reply) ready() bool {
	if rp.done != nil {
		select {
		case <-rp.done:
		default:
			return false
		}
	}
	return rp.alt == 0 || len(rp.durable) > 0
}

// wait waits until the reply can be written: the places lookup is done
// and the store has answered, which keeps the AT line, or the "? " line
// if the change could not be saved.
func (rp *reply) wait() {
	if rp.done != nil {
		<-rp.done
		rp.done = nil
	}
	if rp.alt > 0 {
		if err := <-rp.durable; err != nil {
			rp.buf = append(rp.buf[:0], rp.buf[rp.alt:]...)
		} else {
			rp.buf = rp.buf[:rp.alt]
		}
		rp.alt = 0
	}
}

var replyPool = sync.Pool{New: func() any { return &reply{buf: make([]byte, 0, 256)} }}

// clientConn is one client connection. The handler goroutine reads and
// parses commands and writes the replies that are ready at once (most of
// them), batching the replies to commands that arrived together into one
// write; a reply that must wait (a WHATSAT's places lookup, an IAMAT's
// save to disk) goes to writeLoop's goroutine, and so does every reply
// after it until it has caught up, so that replies keep command order.
type clientConn struct {
	s   *Server
	cfg *config.ClientConfig // the limits at the connection's start; immutable
	// handedOff is called when the connection becomes a peer link, which
	// the server then no longer waits for or touches.
	handedOff func()
	nc        net.Conn
	remote    string
	// q holds replies that wait, in command order; closed by the reader.
	// It and the writer goroutine are made at the first such reply (see
	// send), so a connection that never needs them costs one goroutine.
	q          chan *reply
	writerDone chan struct{}

	wmu        sync.Mutex    // guards the fields below: whoever writes to the socket holds it
	w          *bufio.Writer // allocated at the first reply: idle connections stay small
	queued     int           // replies sent to q and not yet written
	broken     bool          // a write failed: the connection is closed
	deadlineAt time.Time     // when the write deadline was last set
}

// send writes a reply, or queues it when it must wait or replies queued
// before it are not written yet. more says that another command is already
// read: the reply then stays in the buffer, to go out with the next. Only
// the reader goroutine calls it.
func (c *clientConn) send(rp *reply, more bool) {
	c.wmu.Lock()
	if rp.done == nil && rp.alt == 0 && c.queued == 0 {
		c.writeLocked(rp)
		if !more {
			c.flushLocked()
		}
		c.wmu.Unlock()
		c.recycle(rp)
		return
	}
	c.queued++
	c.wmu.Unlock()
	if c.q == nil {
		c.q = make(chan *reply, c.cfg.MaxPipeline)
		c.writerDone = make(chan struct{})
		go func() {
			defer close(c.writerDone)
			c.writeLoop()
		}()
	}
	c.q <- rp
}

func (s *Server) handleClient(nc net.Conn, handedOff func()) {
	remote := nc.RemoteAddr().String()
	ip, ok := s.perIP.acquire(nc.RemoteAddr())
	if !ok {
		s.o.Metrics.ConnRejected(metrics.LimitPerIP)
		s.perIP.logRefusal(s.log, ip)
		nc.Close()
		return
	}
	defer s.perIP.release(ip)
	opened := false
	select {
	case s.slots <- struct{}{}:
		defer func() {
			<-s.slots
			if opened { // after the slot is free: a client that sees the count drop can connect
				s.o.Metrics.ConnClosed()
			}
		}()
	default:
		s.o.Metrics.ConnRejected(metrics.LimitConns)
		s.log.Warn("client connection refused: connection limit reached", "client", remote, "max_conns", s.MaxConns())
		nc.Close()
		return
	}
	if !s.addConn(nc) {
		nc.Close()
		return
	}
	defer s.removeConn(nc)
	s.o.Metrics.ConnOpened()
	opened = true
	s.log.Info("client connected", "client", remote)
	c := &clientConn{s: s, cfg: s.clientConfig(), nc: nc, remote: remote, handedOff: handedOff}
	if s.o.TLS != nil {
		tc, err := s.handshakeTLS(nc)
		if err != nil {
			s.log.Info("client TLS handshake failed", "client", remote, "err", err.Error())
			nc.Close()
			return
		}
		c.nc = tc
	}
	r := bufio.NewReaderSize(c.nc, c.cfg.MaxLineBytes)
	reason := c.readLoop(r)
	if c.q != nil {
		close(c.q)
		<-c.writerDone
	}
	c.wmu.Lock()
	c.flushLocked() // what the last commands left in the buffer
	c.wmu.Unlock()
	if reason == reasonIdle {
		// Replies may wait in the kernel for a client that stopped reading;
		// a reset drops them, and reaches such a client, where the closing
		// handshake queued behind them would not.
		resetOnClose(c.nc)
	}
	c.nc.Close()
	s.log.Info("client disconnected", "client", remote, "reason", reason)
}

// readLoop reads and dispatches commands until the client stops sending,
// and returns why it stopped.
func (c *clientConn) readLoop(r *bufio.Reader) string {
	s := c.s
	first := true
	idle := c.cfg.IdleTimeout.D
	var deadlineSet time.Time
	for {
		// The deadline is refreshed at line boundaries only, so a line
		// trickled in a byte at a time cannot keep the connection; and at
		// most every idle/8, since setting it costs more than a line.
		if idle > 0 {
			if now := time.Now(); now.Sub(deadlineSet) > idle/8 && !s.closing() {
				c.nc.SetReadDeadline(now.Add(idle))
				deadlineSet = now
			}
		}
		if first && c.peerTLSPossible() {
			if b, err := r.Peek(1); err == nil && peer.IsTLS(b[0]) {
				c.becomeTLSPeer(r)
				return "peer link ended"
			}
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.log.Warn("client line too long: closing connection", "client", c.remote, "max_line_bytes", c.cfg.MaxLineBytes)
			return "line too long"
		}
		if len(line) > 0 {
			if first && s.o.AcceptPeersOnClientPort && s.o.Peers != nil && peer.IsHello(line) {
				if !c.becomePeer(r, line) {
					return "peer link ended"
				}
			} else {
				c.dispatch(line, lineBuffered(r))
			}
			first = false
			if c.cfg.OneShot {
				return "one_shot: first reply sent"
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return "client closed"
			case errors.Is(err, os.ErrDeadlineExceeded):
				if s.closing() {
					return "server shutting down"
				}
				return reasonIdle
			default:
				return err.Error()
			}
		}
	}
}

// lineBuffered reports whether r holds a whole line that is already read
// from the socket.
func lineBuffered(r *bufio.Reader) bool {
	n := r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// peerTLSPossible reports whether a connection to the client port may be a
// neighbour's TLS link: links use TLS and share the client port, which
// speaks plain TCP to clients.
func (c *clientConn) peerTLSPossible() bool {
	s := c.s
	return s.o.AcceptPeersOnClientPort && s.o.Peers != nil && s.o.Peers.TLS() && s.o.TLS == nil
}

// becomeTLSPeer hands a connection that opened with a TLS record to the
// peer links.
func (c *clientConn) becomeTLSPeer(r *bufio.Reader) {
	c.s.o.Metrics.ConnToPeer()
	c.s.o.Peers.ServeConn(c.nc, r, c.handedOff)
	c.s.o.Metrics.ConnFromPeer() // balances the ConnClosed when the handler returns
}

// becomePeer hands the connection to the peer links. It returns true if the
// handshake was rejected and the connection goes on as a client one (the
// rejected line has been answered with "? ").
func (c *clientConn) becomePeer(r *bufio.Reader, hello []byte) bool {
	// The writer has nothing queued yet; it stays idle while the link runs.
	c.s.o.Metrics.ConnToPeer()
	err := c.s.o.Peers.Accept(c.nc, r, hello, c.handedOff)
	var rej *peer.Rejected
	if errors.As(err, &rej) {
		c.s.o.Metrics.ConnFromPeer()
		c.logLine("client input", protocol.TrimEOL(hello))
		rp := replyPool.Get().(*reply)
		rp.buf = append(append(rp.buf[:0], "? "...), rej.Line...)
		rp.buf = append(rp.buf, '\n')
		rp.cmd, rp.start = metrics.CmdInvalid, time.Now()
		c.s.o.Metrics.Command(metrics.CmdInvalid, metrics.OutcomeInvalid)
		c.send(rp, false)
		return true
	}
	if err != nil {
		c.s.log.Info("peer connection failed", "remote", c.remote, "err", err.Error())
	}
	c.s.o.Metrics.ConnFromPeer() // balances the ConnClosed when the handler returns
	return false
}

// logLine logs a line in ("client input") or out ("client output").
func (c *clientConn) logLine(msg string, line []byte) { c.s.LogClientLine(msg, c.remote, line) }

// dispatch parses one line and sends its reply; more says that another
// line is already read (see send).
func (c *clientConn) dispatch(raw []byte, more bool) {
	s := c.s
	recv := s.now()
	line := protocol.TrimEOL(raw)
	c.logLine("client input", line)
	rp := replyPool.Get().(*reply)
	rp.buf = rp.buf[:0]
	rp.start = recv
	cmd, err := protocol.Parse(line)
	if err == nil {
		switch cmd.Kind {
		case protocol.KindIAMAT:
			rp.cmd = metrics.CmdIAMAT
			if rp.buf, err = c.iamat(rp.buf, recv, &cmd); err != nil {
				break // refused by a [locations] limit: answered "? " below
			}
			if s.o.Durable != nil {
				// Acknowledge only what is on disk (the stored line may
				// also be a change another connection just made); if it
				// cannot be saved, the answer is "? <line>".
				rp.buf = append(rp.buf, '\n')
				rp.alt = len(rp.buf)
				rp.buf = append(append(rp.buf, "? "...), line...)
				if rp.durable == nil {
					rp.durable = make(chan error, 1)
				}
				s.o.Durable(rp.durable)
			}
		case protocol.KindWHATSAT:
			rp.cmd = metrics.CmdWHATSAT
			if c.whatsat(rp, &cmd) {
				c.send(rp, more)
				return
			}
			s.o.Metrics.Command(metrics.CmdWHATSAT, metrics.OutcomeUnknownClient)
			err = errUnknownClient
		}
	} else {
		rp.cmd = metrics.CmdInvalid
		s.o.Metrics.Command(metrics.CmdInvalid, metrics.OutcomeInvalid)
	}
	if err != nil {
		// The line itself is in the "client input" record just logged.
		s.log.Info("invalid command", "client", c.remote, "err", err.Error())
		rp.buf = append(append(rp.buf, "? "...), line...)
	}
	rp.buf = append(rp.buf, '\n')
	c.send(rp, more)
}

var errUnknownClient = errors.New("WHATSAT for a client the herd does not know")

// iamat stores the location if it is newer, floods it, and appends the AT
// line now stored for the client (see Server.storeIAMAT, the write path
// every front end shares).
func (c *clientConn) iamat(dst []byte, recv time.Time, cmd *protocol.Command) ([]byte, error) {
	dst, _, _, err := c.s.storeIAMAT(dst, recv, cmd)
	return dst, err
}

// whatsat starts answering a WHATSAT for a known client and reports whether
// it did; the reply's done channel is closed when buf holds the answer.
func (c *clientConn) whatsat(rp *reply, cmd *protocol.Command) bool {
	s := c.s
	rec, q, ok := s.whatsatQuery(cmd)
	if !ok {
		return false
	}
	rp.done = make(chan struct{})
	go func() {
		defer close(rp.done)
		rp.buf = appendWhatsat(rp.buf[:0], rec.Line, s.nearby(s.ctx, c.remote, q))
	}()
	return true
}

// appendWhatsat frames a WHATSAT reply: the AT line, the JSON (which
// Response.Render already laid out with no runs of newlines and no
// trailing newline), and a blank line.
func appendWhatsat(dst []byte, atLine string, body []byte) []byte {
	dst = append(dst, atLine...)
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, '\n', '\n')
}

// writeLoop writes the replies that had to wait, in command order, and
// those queued behind them. What is ready is sent before waiting.
func (c *clientConn) writeLoop() {
	for rp := range c.q {
		if !rp.ready() {
			c.wmu.Lock()
			c.flushLocked()
			c.wmu.Unlock()
		}
		rp.wait()
		c.wmu.Lock()
		c.queued--
		c.writeLocked(rp)
		if len(c.q) == 0 {
			c.flushLocked()
		}
		c.wmu.Unlock()
		c.recycle(rp)
		if c.cfg.OneShot {
			break
		}
	}
	// Unblock a reader stuck on a full queue after a write failure, and
	// let pending lookups finish.
	for rp := range c.q {
		if rp.done != nil {
			<-rp.done
		}
	}
}

// writeLocked writes a reply that is ready into the buffer (a large one
// straight to the socket), logs and counts it. c.wmu is held.
func (c *clientConn) writeLocked(rp *reply) {
	if c.broken {
		return
	}
	if c.w == nil {
		c.w = bufio.NewWriterSize(c.nc, 16<<10)
	}
	c.logLine("client output", protocol.TrimEOL(rp.buf))
	if len(rp.buf) > c.w.Available() {
		c.flushLocked()
		if !c.broken {
			c.deadline()
			_, err := c.nc.Write(rp.buf)
			c.failed(err)
		}
	} else {
		c.w.Write(rp.buf)
	}
	c.s.o.Metrics.Reply(rp.cmd, time.Since(rp.start))
}

// recycle returns a written reply to the pool.
func (c *clientConn) recycle(rp *reply) {
	if cap(rp.buf) <= 64<<10 {
		replyPool.Put(rp)
	}
}

// deadline keeps the write deadline client.write_timeout ahead of a
// write. It is set again at most every eighth of the timeout, since
// setting it costs more than a reply: a write has at least 7/8 of it.
func (c *clientConn) deadline() {
	d := c.cfg.WriteTimeout.D
	if d <= 0 {
		return
	}
	if now := time.Now(); now.Sub(c.deadlineAt) > d/8 {
		c.nc.SetWriteDeadline(now.Add(d))
		c.deadlineAt = now
	}
}

// flushLocked writes out the buffer; c.wmu is held.
func (c *clientConn) flushLocked() {
	if c.broken || c.w == nil || c.w.Buffered() == 0 {
		return
	}
	c.deadline()
	c.failed(c.w.Flush())
}

// failed closes the connection after a write error; c.wmu is held.
func (c *clientConn) failed(err error) {
	if err == nil || c.broken {
		return
	}
	c.broken = true
	c.s.log.Warn("client write failed: closing connection", "client", c.remote, "err", err.Error())
	resetOnClose(c.nc)
	c.nc.Close()
}

// reasonIdle is why a connection silent for client.idle_timeout ended.
const reasonIdle = "idle timeout"

// resetOnClose makes closing nc reset the connection: replies the client
// did not read are dropped at once instead of holding kernel buffers (and
// the closing handshake, queued behind them, would never reach a client
// that does not read).
func resetOnClose(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}
