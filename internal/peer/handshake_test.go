package peer

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/logging"
	"herd/internal/pki"
)

// pair makes the Managers of two servers, A (the acceptor, listening on
// 127.0.0.1) and B (the dialer), each with its own Auth.
type pair struct {
	a, b *Manager
	ln   net.Listener
}

func newPair(t testing.TB, authA, authB Auth) *pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Peer
	mk := func(name, peer, addr string, auth Auth) *Manager {
		return New(Options{Name: name, Neighbors: []Neighbor{{Name: peer, Addr: addr}}, Config: cfg, Auth: auth,
			Table: location.NewTable(), Logger: logging.Discard()})
	}
	p := &pair{a: mk("A", "B", "", authA), b: mk("B", "A", ln.Addr().String(), authB), ln: ln}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go p.a.ServeConn(nc, nil, nil)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.a.Close()
		p.b.Close()
	})
	return p
}

// dial runs B's side of one handshake with A and returns its error.
func (p *pair) dial() error {
	return p.b.dialOnce(p.b.link("A"))
}

func secrets(s ...string) [][]byte {
	var out [][]byte
	for _, v := range s {
		out = append(out, []byte(v))
	}
	return out
}

const (
	secret1 = "first-secret-0123456789abcdef"
	secret2 = "second-secret-0123456789abcdef"
)

func TestHandshakeModes(t *testing.T) {
	tests := map[string]struct {
		a, b Auth
		code RefuseReason // of B's error; ignored when ok
		ok   bool
		msg  string // in B's error
	}{
		"same secret":         {Auth{Secrets: secrets(secret1)}, Auth{Secrets: secrets(secret1)}, 0, true, ""},
		"rollover":            {Auth{Secrets: secrets(secret2, secret1)}, Auth{Secrets: secrets(secret1)}, 0, true, ""},
		"other secret":        {Auth{Secrets: secrets(secret2)}, Auth{Secrets: secrets(secret1)}, RefuseCredential, false, "refused this server's credential"},
		"dialer has none":     {Auth{Secrets: secrets(secret1)}, Auth{}, RefuseMode, false, "neighbour authenticates links by a shared secret"},
		"acceptor has none":   {Auth{}, Auth{Secrets: secrets(secret1)}, RefuseMode, false, "this server by a shared secret"},
		"protected, loopback": {Auth{}, Auth{}, 0, true, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := newPair(t, tt.a, tt.b)
			err := p.dial()
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *refusedError
			if !errors.As(err, &re) || re.reason != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %s with %q", err, tt.code, tt.msg)
			}
			if p.b.link("A").current() != nil {
				t.Fatal("link up after a refused handshake")
			}
		})
	}
}

// TestAcceptorProvesLast: a stranger that sends a wrong proof gets no proof
// of the acceptor's, so it has nothing to test guesses of the secret on.
func TestAcceptorProvesLast(t *testing.T) {
	p := newPair(t, Auth{Secrets: secrets(secret1)}, Auth{})
	nc, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(nc)
	nc.Write([]byte("HERD-PEER 2 B A " + strings.Repeat("0f", 16) + "\n"))
	ok, _ := r.ReadString('\n')
	if f := strings.Fields(ok); len(f) != 5 || f[0] != okWord || f[4] != "secret" {
		t.Fatalf("challenge %q", ok)
	}
	nc.Write([]byte("HERD-PEER-AUTH " + strings.Repeat("ab", 32) + "\n"))
	rest, _ := r.ReadString('\n')
	if strings.HasPrefix(rest, authWord) || !strings.HasPrefix(rest, errWord) {
		t.Fatalf("after a wrong proof the acceptor sent %q", rest)
	}
	if p.a.Refusals()["credential"] != 1 {
		t.Fatalf("refusals %v", p.a.Refusals())
	}
}

// TestMessageCodes: every message verifies in order; an altered, dropped,
// repeated or uncoded line does not.
func TestMessageCodes(t *testing.T) {
	key := sessionKey([]byte(secret1), "B", "A", "n1", "n2")
	lines := []string{"SYNC 0 0", "AT B +0.000000001 kiwi +1+1 1", "SEQ 1", "PING"}
	var buf bytes.Buffer
	lw := &lineWriter{w: bufio.NewWriter(&buf), mac: newMacer(key, 'd')}
	for _, l := range lines {
		lw.lineString(l)
	}
	lw.w.Flush()
	wire := strings.SplitAfter(buf.String(), "\n")[:len(lines)]
	read := func(ls ...string) ([]string, error) {
		lr := &lineReader{r: bufio.NewReader(strings.NewReader(strings.Join(ls, ""))), mac: newMacer(key, 'd')}
		var got []string
		for range ls {
			b, err := lr.next()
			if err != nil {
				return got, err
			}
			got = append(got, string(b))
		}
		return got, nil
	}
	if got, err := read(wire...); err != nil || !slices.Equal(got, lines) {
		t.Fatalf("read %q, %v", got, err)
	}
	altered := strings.Replace(wire[1], "+1+1", "+2+1", 1)
	for name, ls := range map[string][]string{
		"altered":   {wire[0], altered},
		"dropped":   {wire[0], wire[2]},
		"repeated":  {wire[0], wire[0]},
		"reordered": {wire[1], wire[0]},
		"uncoded":   {"SYNC 0 0\n"},
		"other direction": func() []string {
			var b bytes.Buffer
			w := &lineWriter{w: bufio.NewWriter(&b), mac: newMacer(key, 'a')}
			w.lineString("SYNC 0 0")
			w.w.Flush()
			return []string{b.String()}
		}(),
	} {
		if _, err := read(ls...); !errors.Is(err, errBadMAC) {
			t.Errorf("%s: error %v, want a bad code", name, err)
		}
	}
}

// tlsAuth makes a CA and certificates for names in a new directory and
// returns the TLS Auth of each name.
func tlsAuth(t testing.TB, names ...string) map[string]Auth {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Auth{}
	for _, n := range names {
		if _, err := ca.IssueServer(dir, n, nil); err != nil {
			t.Fatal(err)
		}
		p, err := pki.NewPeer(filepath.Join(dir, "ca.crt"), filepath.Join(dir, n+".crt"), filepath.Join(dir, n+".key"))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = Auth{TLS: p}
	}
	return out
}

func TestTLSHandshake(t *testing.T) {
	auth := tlsAuth(t, "A", "B", "C")
	if err := newPair(t, auth["A"], auth["B"]).dial(); err != nil {
		t.Fatalf("TLS link refused: %v", err)
	}
	// C's certificate, dialing as B: the acceptor refuses the claim.
	p := newPair(t, auth["A"], auth["C"])
	if err := p.dial(); err == nil {
		t.Fatal("a certificate for C linked as B")
	}
	if p.a.Refusals()["credential"] != 1 {
		t.Fatalf("refusals %v", p.a.Refusals())
	}
	// A dialer without TLS gets the reason in plain words.
	err := newPair(t, auth["A"], Auth{}).dial()
	if err == nil || !strings.Contains(err.Error(), "this port speaks TLS") {
		t.Fatalf("plaintext dialer: %v", err)
	}
}

// BenchmarkHandshake measures a dial's handshake, from the TCP connect to
// the link's registration, in each mode: median and p99 in microseconds.
func BenchmarkHandshake(b *testing.B) {
	auth := tlsAuth(b, "A", "B")
	for _, mode := range []struct {
		name string
		a, b Auth
	}{
		{"none", Auth{}, Auth{}},
		{"secret", Auth{Secrets: secrets(secret1)}, Auth{Secrets: secrets(secret1)}},
		{"tls", auth["A"], auth["B"]},
	} {
		b.Run(mode.name, func(b *testing.B) {
			p := newPair(b, mode.a, mode.b)
			l := p.b.link("A")
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := p.dial(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				if c := l.current(); c != nil {
					c.close(CloseShutdown, "benchmark")
				}
				for l.current() != nil {
					time.Sleep(50 * time.Microsecond) // the serving goroutine retiring the link
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}

var _ TLSConfig = (*pki.Peer)(nil)

// tlsVersion guards the minimum version the pki configs promise.
func TestTLSMinimum(t *testing.T) {
	auth := tlsAuth(t, "A")
	if v := auth["A"].TLS.ServerConfig().MinVersion; v != tls.VersionTLS13 {
		t.Fatalf("server MinVersion %x", v)
	}
}

// TestSetNeighbors: a link added while the Manager runs is dialed at once;
// a removed one is closed, counted as removed, and no longer accepted.
func TestSetNeighbors(t *testing.T) {
	p := newPair(t, Auth{}, Auth{})
	addr := p.ln.Addr().String()
	p.b.SetNeighbors(nil)
	p.b.Start()
	if len(p.b.Links()) != 0 {
		t.Fatalf("links %+v", p.b.Links())
	}
	added, removed := p.b.SetNeighbors([]Neighbor{{Name: "A", Addr: addr}})
	if !slices.Equal(added, []string{"A"}) || len(removed) != 0 {
		t.Fatalf("added %v removed %v", added, removed)
	}
	up := func(m *Manager, peer string) bool {
		for _, l := range m.Links() {
			if l.Peer == peer {
				return l.Up
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !up(p.b, "A") || !up(p.a, "B") {
		if time.Now().After(deadline) {
			t.Fatal("the added link did not come up")
		}
		time.Sleep(time.Millisecond)
	}
	// A drops B: B's link goes down and B's redials are refused.
	if _, removed := p.a.SetNeighbors(nil); !slices.Equal(removed, []string{"B"}) {
		t.Fatalf("removed %v", removed)
	}
	for up(p.a, "B") || up(p.b, "A") || p.a.Refusals()["stranger"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the removed link is still up or B's redial was not refused: %v", p.a.Refusals())
		}
		time.Sleep(time.Millisecond)
	}
	p.b.SetNeighbors(nil)
	if n := len(p.b.Links()); n != 0 {
		t.Fatalf("%d links after removing all", n)
	}
}
