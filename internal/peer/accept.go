package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"herd/internal/protocol"
)

// tlsRecordHandshake is the first byte of a TLS ClientHello.
const tlsRecordHandshake = 0x16

// IsTLS reports whether b, the first byte a connection sent, starts a TLS
// handshake (no client protocol line starts with it).
func IsTLS(b byte) bool { return b == tlsRecordHandshake }

// TLS reports whether links are authenticated by mutual TLS.
func (m *Manager) TLS() bool { return m.auth.TLS != nil }

// ServeConn serves a connection to a peer listener, or a client-port
// connection that opened with a TLS record (r then holds what was read; nil
// otherwise). The hello (the TLS ClientHello in TLS mode) must arrive within
// HelloTimeout and the handshake end within HandshakeTimeout; beyond
// MaxHandshakes in progress, or MaxHandshakesPerSource from one address, the
// connection is closed at once. Until it is authenticated a connection
// holds a handshake-sized buffer. On success linked (if set) is called and
// the link is served until it ends. ServeConn closes nc.
func (m *Manager) ServeConn(nc net.Conn, r *bufio.Reader, linked func()) {
	defer nc.Close()
	release, ok := m.admission.admit(nc.RemoteAddr())
	if !ok {
		m.noteRefusal(nc, &errRejected{code: RefuseBusy, reason: "too many peer handshakes in progress"})
		return
	}
	defer release()
	start := time.Now()
	nc.SetDeadline(start.Add(HelloTimeout))
	if r == nil {
		r = bufio.NewReaderSize(nc, handshakeBufSize)
	}
	first, err := r.Peek(1)
	if err != nil {
		m.noteRefusal(nc, &errRejected{code: RefuseTimeout, reason: "no hello: " + err.Error()})
		return
	}
	var link net.Conn = nc
	switch {
	case m.auth.TLS != nil && !IsTLS(first[0]):
		m.noteRefusal(nc, &errRejected{code: RefuseMode, reason: "plaintext hello to a TLS peer port"})
		release()
		refuse(nc, fmt.Sprintf("%s %s this port speaks TLS: the dialing server needs [peer.tls]\n", errWord, Version))
		return
	case m.auth.TLS == nil && IsTLS(first[0]):
		m.noteRefusal(nc, &errRejected{code: RefuseMode, reason: "TLS hello to a plaintext peer port: this server has no [peer.tls]"})
		return
	case m.auth.TLS != nil:
		tc := tls.Server(&prefixConn{Conn: nc, r: r}, m.auth.TLS.ServerConfig())
		ctx, cancel := context.WithDeadline(m.ctx, start.Add(HandshakeTimeout))
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			m.noteRefusal(nc, &errRejected{code: RefuseCredential, reason: "TLS handshake: " + err.Error()})
			return
		}
		link, r = tc, bufio.NewReaderSize(tc, handshakeBufSize)
		link.SetDeadline(start.Add(HandshakeTimeout))
	}
	hello, err := readLine(r)
	if err != nil {
		m.noteRefusal(nc, &errRejected{code: RefuseTimeout, reason: "no hello: " + err.Error()})
		return
	}
	if !IsHello([]byte(hello)) {
		m.noteRefusal(nc, &errRejected{code: RefuseMalformed, reason: "not a peer hello"})
		return
	}
	from, key, err := m.acceptHandshake(link, r, hello, start.Add(HandshakeTimeout))
	release()
	if err != nil {
		var rej *errRejected
		if errors.As(err, &rej) {
			m.noteRefusal(nc, rej)
			refuse(link, fmt.Sprintf("%s %s %s\n", errWord, Version, rej.code))
		} else {
			m.log.Info("peer connection failed", "remote", nc.RemoteAddr().String(), "err", err.Error())
		}
		return
	}
	l := m.link(from)
	if l == nil || !m.track() {
		return // removed from the config meanwhile
	}
	defer m.wg.Done()
	if linked != nil {
		linked()
	}
	m.run(l, link, r, from, key)
}

// refusalLinger bounds how long a refused connection is read, after the
// refusal is sent, before it is closed.
const refusalLinger = time.Second

// refuse sends msg and ends the connection so that msg arrives: it shuts
// its sending side and reads what the peer still sends for a moment,
// since closing with unread input would reset the connection and could
// discard msg on the way.
func refuse(nc net.Conn, msg string) {
	nc.SetDeadline(time.Now().Add(refusalLinger))
	io.WriteString(nc, msg)
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(nc, handshakeBufSize*16))
}

// Accept runs the acceptor's side of the handshake on a client-port
// connection whose first line, hello, has been read from r, and if it
// succeeds calls linked (if set) and serves the link until it ends. If the
// handshake is refused,
// Accept returns a *Rejected error carrying the line that failed, and the
// caller decides what becomes of the connection (a client port treats it as
// a client). Other errors mean the connection is unusable; Accept does not
// close nc then.
func (m *Manager) Accept(nc net.Conn, r *bufio.Reader, hello []byte, linked func()) error {
	line := string(protocol.TrimEOL(hello))
	release, ok := m.admission.admit(nc.RemoteAddr())
	if !ok {
		rej := &errRejected{line: line, code: RefuseBusy, reason: "too many peer handshakes in progress"}
		m.noteRefusal(nc, rej)
		return &Rejected{Line: line, Reason: rej.reason}
	}
	from, key, err := m.acceptHandshake(nc, r, line, time.Now().Add(HandshakeTimeout))
	release()
	if err != nil {
		var rej *errRejected
		if errors.As(err, &rej) {
			m.noteRefusal(nc, rej)
			return &Rejected{Line: rej.line, Reason: rej.reason}
		}
		return err
	}
	l := m.link(from)
	if l == nil || !m.track() {
		return nil // removed from the config meanwhile
	}
	defer m.wg.Done()
	if linked != nil {
		linked()
	}
	m.run(l, nc, r, from, key)
	return nil
}

// noteRefusal counts a refused handshake and logs it, at most once a
// minute per claimed neighbour (or per reason for strangers).
func (m *Manager) noteRefusal(nc net.Conn, rej *errRejected) {
	key := "stranger:" + rej.code.String()
	if rej.peer != "" {
		key = "accept:" + rej.peer
	}
	if m.refused.note(rej.code, key, time.Now()) {
		args := []any{"remote", nc.RemoteAddr().String(), "reason", rej.code.String(), "err", rej.reason}
		if rej.peer != "" {
			args = append(args, "peer", rej.peer)
		}
		m.log.Warn("peer handshake refused", args...)
	}
}

// Rejected is returned by Accept for a connection that is not a peer.
type Rejected struct {
	Line   string // the line that failed the handshake
	Reason string
}

func (e *Rejected) Error() string { return "not a peer: " + e.Reason }

// prefixConn is a connection whose first bytes were already read into r.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }
