package peer

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Version is the peer protocol version this build speaks.
const Version = "2"

// Handshake lines (see docs/PROTOCOL.md, "Between servers").
const (
	helloWord = "HERD-PEER"
	okWord    = "HERD-PEER-OK"
	authWord  = "HERD-PEER-AUTH"
	errWord   = "HERD-PEER-ERR"
	noProof   = "-"
)

// Handshake bounds (SPEC §8).
const (
	// HelloTimeout is how long a connection to a peer listener may take to
	// send its hello (its TLS ClientHello in TLS mode).
	HelloTimeout = 2 * time.Second
	// HandshakeTimeout is how long a whole handshake may take.
	HandshakeTimeout = 5 * time.Second
	// MaxHandshakes is how many handshakes a server runs at once.
	MaxHandshakes = 64
	// MaxHandshakesPerSource is how many of them may come from one address.
	MaxHandshakesPerSource = 8
	// handshakeBufSize is the read buffer of a connection until it is
	// authenticated: a handshake line is far shorter.
	handshakeBufSize = 1024
)

// IsHello reports whether line is the first line of a peer handshake.
func IsHello(line []byte) bool {
	return len(line) > len(helloWord) && string(line[:len(helloWord)]) == helloWord &&
		(line[len(helloWord)] == ' ' || line[len(helloWord)] == '\t')
}

func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readLine reads one handshake line without its line ending.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", errors.New("handshake line too long")
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// refusedError is a dial whose handshake the neighbour, or this server,
// refused; side says whose credential or setting was at fault.
type refusedError struct {
	reason RefuseReason
	msg    string
}

func (e *refusedError) Error() string { return e.msg }

func refusedf(r RefuseReason, format string, args ...any) error {
	return &refusedError{reason: r, msg: fmt.Sprintf(format, args...)}
}

// dialHandshake runs the dialer's side on a fresh connection (TLS already
// established in TLS mode) to the neighbour named to. The dialer proves
// itself first, so a stranger posing as the neighbour learns nothing it
// could test guesses of the secret against. It returns the connection's
// message key (nil unless the link uses a shared secret).
func (m *Manager) dialHandshake(nc net.Conn, r *bufio.Reader, to string) ([]byte, error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	nonceD := newNonce()
	if _, err := fmt.Fprintf(nc, "%s %s %s %s %s\n", helloWord, Version, m.name, to, nonceD); err != nil {
		return nil, err
	}
	line, err := readLine(r)
	if err != nil {
		return nil, fmt.Errorf("reading handshake reply: %w", err)
	}
	f := strings.Fields(line)
	switch {
	case len(f) > 0 && f[0] == errWord:
		return nil, refusedf(RefuseMode, "neighbour refused the hello: %s", strings.Join(f[1:], " "))
	case len(f) > 0 && f[0] == "?":
		return nil, refusedf(RefuseMode, "neighbour answered the hello as a client line (it speaks another peer protocol version, requires TLS, or does not list this server as a neighbour)")
	case len(f) != 5 || f[0] != okWord || f[1] != Version || f[2] != to:
		return nil, refusedf(RefuseMalformed, "bad handshake reply %q", line)
	}
	nonceA, theirs := f[3], f[4]
	if ours := m.auth.wireMode(); theirs != ours {
		return nil, refusedf(RefuseMode, "neighbour authenticates links by %s, this server by %s: configure both the same way", describeMode(theirs), describeMode(ours))
	}
	p := noProof
	if theirs == "secret" {
		p = proof(m.auth.Secrets[0], "dialer", m.name, to, nonceD, nonceA)
	}
	if _, err := fmt.Fprintf(nc, "%s %s\n", authWord, p); err != nil {
		return nil, err
	}
	line, err = readLine(r)
	if err != nil {
		return nil, fmt.Errorf("reading the neighbour's proof: %w", err)
	}
	g := strings.Fields(line)
	if len(g) != 2 || g[0] != authWord {
		return nil, refusedf(RefuseCredential, "neighbour refused this server's credential (peer secrets differ)")
	}
	if theirs != "secret" {
		if g[1] != noProof {
			return nil, refusedf(RefuseMalformed, "bad handshake proof %q", line)
		}
		return nil, nil
	}
	s := matchSecret(m.auth.Secrets, g[1], "acceptor", m.name, to, nonceD, nonceA)
	if s == nil {
		return nil, refusedf(RefuseCredential, "neighbour's credential did not verify (peer secrets differ)")
	}
	return sessionKey(s, m.name, to, nonceD, nonceA), nil
}

func describeMode(w string) string {
	switch w {
	case "tls":
		return "mutual TLS ([peer.tls])"
	case "secret":
		return "a shared secret (peer_secret_file or HERD_PEER_SECRET)"
	}
	return "nothing (no secret, no TLS)"
}

// errRejected marks a hello that was not a valid peer handshake: the
// connection is not a peer, and the line that failed is returned with it.
type errRejected struct {
	line   string
	code   RefuseReason
	peer   string // the neighbour it claims to be; empty for a stranger
	reason string
}

func (e *errRejected) Error() string { return "peer handshake rejected: " + e.reason }

func reject(line string, code RefuseReason, format string, args ...any) error {
	return &errRejected{line: line, code: code, reason: fmt.Sprintf(format, args...)}
}

// rejectPeer is reject for a hello that named a configured neighbour.
func rejectPeer(line string, code RefuseReason, peer, format string, args ...any) error {
	return &errRejected{line: line, code: code, peer: peer, reason: fmt.Sprintf(format, args...)}
}

// acceptHandshake runs the acceptor's side, hello being the first line
// already read; the rest must arrive before deadline. It returns the
// dialer's name and the connection's message key (nil unless the link uses
// a shared secret).
func (m *Manager) acceptHandshake(nc net.Conn, r *bufio.Reader, hello string, deadline time.Time) (string, []byte, error) {
	f := strings.Fields(hello)
	if len(f) != 5 || f[0] != helloWord {
		return "", nil, reject(hello, RefuseMalformed, "malformed hello")
	}
	if f[1] != Version {
		return "", nil, reject(hello, RefuseVersion, "unsupported peer protocol version %s (this server speaks %s)", f[1], Version)
	}
	from, to, nonceD := f[2], f[3], f[4]
	if to != m.name {
		return "", nil, reject(hello, RefuseStranger, "hello is addressed to %q, this is %q", to, m.name)
	}
	if m.link(from) == nil {
		return "", nil, reject(hello, RefuseStranger, "%q is not a neighbour", from)
	}
	if len(nonceD) < 32 || len(nonceD) > 128 {
		return "", nil, rejectPeer(hello, RefuseMalformed, from, "bad nonce")
	}
	if err := m.checkTransport(nc, hello, from); err != nil {
		return "", nil, err
	}
	nc.SetDeadline(deadline)
	defer nc.SetDeadline(time.Time{})
	nonceA := newNonce()
	if _, err := fmt.Fprintf(nc, "%s %s %s %s %s\n", okWord, Version, m.name, nonceA, m.auth.wireMode()); err != nil {
		return "", nil, err
	}
	line, err := readLine(r)
	if err != nil {
		return "", nil, fmt.Errorf("reading handshake: %w", err)
	}
	g := strings.Fields(line)
	if len(g) != 2 || g[0] != authWord {
		return "", nil, rejectPeer(line, RefuseMalformed, from, "expected %s", authWord)
	}
	if len(m.auth.Secrets) == 0 || m.auth.TLS != nil {
		if g[1] != noProof {
			return "", nil, rejectPeer(line, RefuseMode, from, "%s sent a proof, but this server has no peer secret", from)
		}
		_, err := fmt.Fprintf(nc, "%s %s\n", authWord, noProof)
		return from, nil, err
	}
	s := matchSecret(m.auth.Secrets, g[1], "dialer", from, m.name, nonceD, nonceA)
	if s == nil {
		return "", nil, rejectPeer(line, RefuseCredential, from, "%s's proof did not verify (peer secrets differ)", from)
	}
	if _, err := fmt.Fprintf(nc, "%s %s\n", authWord, proof(s, "acceptor", from, m.name, nonceD, nonceA)); err != nil {
		return "", nil, err
	}
	return from, sessionKey(s, from, m.name, nonceD, nonceA), nil
}

// checkTransport refuses a connection the mode does not allow: in TLS mode
// anything but TLS with a certificate naming the claimed neighbour, in
// protected mode a non-loopback source.
func (m *Manager) checkTransport(nc net.Conn, hello, from string) error {
	switch m.auth.Mode() {
	case "tls":
		tc, ok := nc.(*tls.Conn)
		if !ok {
			return rejectPeer(hello, RefuseMode, from, "plaintext hello from %s: this server's peer links use TLS", from)
		}
		cs := tc.ConnectionState()
		if len(cs.PeerCertificates) == 0 {
			return rejectPeer(hello, RefuseCredential, from, "%s presented no certificate", from)
		}
		if names := cs.PeerCertificates[0].DNSNames; !slices.Contains(names, from) {
			return rejectPeer(hello, RefuseCredential, from, "claims to be %s but its certificate names %v", from, names)
		}
	case "protected":
		if !isLoopback(nc.RemoteAddr()) {
			return rejectPeer(hello, RefuseNotLoopback, from, "%s connected from %s, which is not a loopback address: without a peer secret or [peer.tls], peers are accepted from loopback only", from, nc.RemoteAddr())
		}
	}
	return nil
}
