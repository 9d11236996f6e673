package peer

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Version is the peer protocol version this build speaks.
const Version = "1"

// Handshake lines (see docs/PROTOCOL.md, "Between servers").
const (
	helloWord = "HERD-PEER"
	okWord    = "HERD-PEER-OK"
	authWord  = "HERD-PEER-AUTH"
	errWord   = "HERD-PEER-ERR"
	noMAC     = "-"
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

// mac computes the handshake proof of one side. Both names and both nonces
// are covered, and the role keeps a proof from being reflected back.
func mac(secret []byte, role, dialer, acceptor, nonceD, nonceA string) string {
	if len(secret) == 0 {
		return noMAC
	}
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, "herd-peer-v1\x00"+role+"\x00"+dialer+"\x00"+acceptor+"\x00"+nonceD+"\x00"+nonceA)
	return hex.EncodeToString(h.Sum(nil))
}

func macEqual(secret []byte, got, want string) bool {
	if len(secret) == 0 {
		return got == noMAC
	}
	return hmac.Equal([]byte(got), []byte(want))
}

// readLine reads one line without its line ending.
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

// dialHandshake runs the dialer's side on a fresh connection to the
// neighbour named to.
func (m *Manager) dialHandshake(nc net.Conn, r *bufio.Reader, to string) error {
	nc.SetDeadline(time.Now().Add(m.cfg.DialTimeout.D))
	defer nc.SetDeadline(time.Time{})
	nonceD := newNonce()
	if _, err := fmt.Fprintf(nc, "%s %s %s %s %s\n", helloWord, Version, m.name, to, nonceD); err != nil {
		return err
	}
	line, err := readLine(r)
	if err != nil {
		return fmt.Errorf("reading handshake reply: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != okWord {
		return fmt.Errorf("handshake rejected: %q", line)
	}
	if len(f) != 5 || f[1] != Version || f[2] != to {
		return fmt.Errorf("bad handshake reply %q", line)
	}
	nonceA, macA := f[3], f[4]
	if macA == noMAC && len(m.secret) > 0 {
		return errors.New("neighbour has no peer secret but this server has one")
	}
	if macA != noMAC && len(m.secret) == 0 {
		return errors.New("neighbour requires a peer secret but this server has none")
	}
	if !macEqual(m.secret, macA, mac(m.secret, "acceptor", m.name, to, nonceD, nonceA)) {
		return errors.New("neighbour failed authentication (peer secrets differ)")
	}
	_, err = fmt.Fprintf(nc, "%s %s\n", authWord, mac(m.secret, "dialer", m.name, to, nonceD, nonceA))
	return err
}

// errRejected marks a hello that was not a valid peer handshake: the
// connection is not a peer, and the line that failed is returned with it.
type errRejected struct {
	line   string
	reason string
}

func (e *errRejected) Error() string { return "peer handshake rejected: " + e.reason }

// acceptHandshake runs the acceptor's side, hello being the first line
// already read. It returns the dialer's name.
func (m *Manager) acceptHandshake(nc net.Conn, r *bufio.Reader, hello string) (string, error) {
	f := strings.Fields(hello)
	if len(f) != 5 || f[0] != helloWord {
		return "", &errRejected{hello, "malformed hello"}
	}
	if f[1] != Version {
		return "", &errRejected{hello, "unsupported peer protocol version " + f[1]}
	}
	from, to, nonceD := f[2], f[3], f[4]
	if to != m.name {
		return "", &errRejected{hello, fmt.Sprintf("hello is addressed to %q, this is %q", to, m.name)}
	}
	if _, ok := m.links[from]; !ok {
		return "", &errRejected{hello, fmt.Sprintf("%q is not a neighbour", from)}
	}
	if len(nonceD) < 16 || len(nonceD) > 128 {
		return "", &errRejected{hello, "bad nonce"}
	}
	nc.SetDeadline(time.Now().Add(m.cfg.DialTimeout.D))
	defer nc.SetDeadline(time.Time{})
	nonceA := newNonce()
	if _, err := fmt.Fprintf(nc, "%s %s %s %s %s\n", okWord, Version, m.name, nonceA, mac(m.secret, "acceptor", from, m.name, nonceD, nonceA)); err != nil {
		return "", err
	}
	line, err := readLine(r)
	if err != nil {
		return "", fmt.Errorf("reading handshake: %w", err)
	}
	g := strings.Fields(line)
	if len(g) != 2 || g[0] != authWord {
		return "", &errRejected{line, "expected " + authWord}
	}
	if !macEqual(m.secret, g[1], mac(m.secret, "dialer", from, m.name, nonceD, nonceA)) {
		return "", &errRejected{line, "authentication failed"}
	}
	return from, nil
}
