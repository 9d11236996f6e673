package peer

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net"
)

// Auth says how a server authenticates its peer links (SPEC §8). TLS wins
// over Secrets; with neither, the server is in protected mode unless
// Insecure is set.
type Auth struct {
	// TLS, if set, runs every link over mutual TLS 1.3.
	TLS TLSConfig
	// Secrets are shared secrets of at least MinSecretBytes: the first
	// proves this server, any of them is accepted from a neighbour (two at
	// once during a rollover).
	Secrets [][]byte
	// Insecure accepts unauthenticated peers from any address. Without it
	// (and without TLS or Secrets) peers are accepted from loopback
	// addresses only.
	Insecure bool
}

// MinSecretBytes is the shortest shared secret accepted.
const MinSecretBytes = 16

// TLSConfig builds the TLS settings of peer links; *pki.Peer implements it.
type TLSConfig interface {
	// ServerConfig is the acceptor's: it requires and verifies a client
	// certificate.
	ServerConfig() *tls.Config
	// ClientConfig is the dialer's toward the neighbour named peer: the
	// neighbour's certificate must name it.
	ClientConfig(peer string) *tls.Config
}

// Mode names how links are authenticated: "tls", "secret", "insecure" or
// "protected".
func (a Auth) Mode() string {
	switch {
	case a.TLS != nil:
		return "tls"
	case len(a.Secrets) > 0:
		return "secret"
	case a.Insecure:
		return "insecure"
	}
	return "protected"
}

// wireMode is the mode word of HERD-PEER-OK: what the acceptor expects
// from the dialer.
func (a Auth) wireMode() string {
	switch a.Mode() {
	case "tls", "secret":
		return a.Mode()
	}
	return "none"
}

// macLen is the length in bytes of a message's authentication code.
const macLen = 16

// proof computes one side's handshake proof: both names and both nonces are
// covered, and the role keeps a proof from being reflected back.
func proof(secret []byte, role, dialer, acceptor, nonceD, nonceA string) string {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, "herd-peer-v2\x00"+role+"\x00"+dialer+"\x00"+acceptor+"\x00"+nonceD+"\x00"+nonceA)
	return hex.EncodeToString(h.Sum(nil))
}

// sessionKey derives the key that authenticates every message of one
// connection.
func sessionKey(secret []byte, dialer, acceptor, nonceD, nonceA string) []byte {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, "herd-peer-v2\x00key\x00"+dialer+"\x00"+acceptor+"\x00"+nonceD+"\x00"+nonceA)
	return h.Sum(nil)
}

// matchSecret returns the secret that produced got, or nil. Every secret is
// compared in constant time.
func matchSecret(secrets [][]byte, got, role, dialer, acceptor, nonceD, nonceA string) []byte {
	var found []byte
	for _, s := range secrets {
		if hmac.Equal([]byte(got), []byte(proof(s, role, dialer, acceptor, nonceD, nonceA))) && found == nil {
			found = s
		}
	}
	return found
}

// macer computes the authentication codes of one direction of a
// connection: HMAC-SHA256(key, direction ‖ counter ‖ line), cut to macLen
// bytes. The counter makes a dropped, repeated or reordered line fail.
type macer struct {
	h   hash.Hash
	dir byte
	n   uint64
	sum []byte
}

func newMacer(key []byte, dir byte) *macer {
	return &macer{h: hmac.New(sha256.New, key), dir: dir}
}

// next returns the code of the next line in this direction.
func (m *macer) next(line []byte) []byte {
	var hdr [9]byte
	hdr[0] = m.dir
	binary.BigEndian.PutUint64(hdr[1:], m.n)
	m.n++
	m.h.Reset()
	m.h.Write(hdr[:])
	m.h.Write(line)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum[:macLen]
}

// lineWriter writes the messages of one connection, each followed by its
// code when the link is authenticated by a shared secret.
type lineWriter struct {
	w       *bufio.Writer
	mac     *macer // nil: no codes (TLS, or no secret)
	hex     [2 * macLen]byte
	scratch []byte
}

// line writes one message; b must not end in a line ending.
func (lw *lineWriter) line(b []byte) {
	lw.w.Write(b)
	lw.seal(b)
}

// lineString writes one message given as a string.
func (lw *lineWriter) lineString(s string) {
	lw.w.WriteString(s)
	if lw.mac == nil {
		lw.w.WriteByte('\n')
		return
	}
	lw.scratch = append(lw.scratch[:0], s...)
	lw.seal(lw.scratch)
}

func (lw *lineWriter) seal(b []byte) {
	if lw.mac != nil {
		hex.Encode(lw.hex[:], lw.mac.next(b))
		lw.w.WriteByte(' ')
		lw.w.Write(lw.hex[:])
	}
	lw.w.WriteByte('\n')
}

// errBadMAC is returned for a message whose code does not verify.
var errBadMAC = errors.New("message failed authentication")

// lineReader reads the messages of one connection and checks their codes.
type lineReader struct {
	r   *bufio.Reader
	mac *macer // nil: no codes
	buf [macLen]byte
}

// next returns the next message without its line ending and code; the
// slice is valid until the next call.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if lr.mac == nil {
		return line, nil
	}
	i := len(line) - 2*macLen - 1
	if i < 0 || line[i] != ' ' {
		return nil, errBadMAC
	}
	if _, err := hex.Decode(lr.buf[:], line[i+1:]); err != nil {
		return nil, errBadMAC
	}
	body := line[:i]
	if !hmac.Equal(lr.buf[:], lr.mac.next(body)) {
		return nil, errBadMAC
	}
	return body, nil
}

// isLoopback reports whether a is a loopback address.
func isLoopback(a net.Addr) bool {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
