package herd

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/faultproxy"
	"herd/internal/location"
	"herd/internal/peer"
	"herd/internal/pki"
	"herd/internal/protocol"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// makeCerts runs what `herd certs` does for names into a new directory and
// returns it.
func makeCerts(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := ca.IssueServer(dir, n, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// signCert issues, with the CA in dir, a certificate for name valid from
// notBefore to notAfter, and returns it with its key: certificates
// `herd certs` would never make (expired ones).
func signCert(t testing.TB, dir, name string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	caCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	c, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadCert loads the key and certificate `herd certs` made for name in dir.
func loadCert(t testing.TB, dir, name string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsConfig points cfg's [peer.tls] at the certificates in dir.
func tlsConfig(cfg *config.Config, dir string) {
	cfg.Peer.TLS = config.TLSFiles{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "{name}.crt"), KeyFile: filepath.Join(dir, "{name}.key")}
}

// tables returns every member's table, one sorted list of AT lines each.
func tables(h *Herd) map[string][]string {
	out := map[string][]string{}
	for _, m := range h.Members() {
		var lines []string
		m.Table.Range(func(r location.Record) bool {
			lines = append(lines, r.Line)
			return true
		})
		slices.Sort(lines)
		out[m.Name] = lines
	}
	return out
}

// outsiderAddr is the loopback source the outsider dials from; strangerIP
// is what the listeners of the protected-mode test report it as.
var (
	outsiderAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	strangerIP   = net.IPv4(192, 0, 2, 7)
)

// remoteListener reports connections from 127.0.0.2 as coming from
// strangerIP, a non-loopback address: as seen by a server on a real network.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && a.IP.Equal(outsiderAddr.IP) {
		return strangerConn{c, &net.TCPAddr{IP: strangerIP, Port: a.Port}}, nil
	}
	return c, nil
}

type strangerConn struct {
	net.Conn
	remote net.Addr
}

func (c strangerConn) RemoteAddr() net.Addr { return c.remote }

func (c strangerConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// attack speaks the peer protocol to addr as each of claims would, plus a
// stranger: a v2 hello, no proof, a made-up proof, a SYNC asking for
// everything, an injected record timed as late as possible, and a v1
// hello. It returns everything the server sent back.
func attack(t *testing.T, addr, server string, claims []string, overTLS *tls.Config) string {
	t.Helper()
	var got strings.Builder
	for _, from := range append(slices.Clone(claims), "Mallory") {
		for _, p := range []string{"-", strings.Repeat("ab", 32)} {
			d := net.Dialer{LocalAddr: outsiderAddr, Timeout: 5 * time.Second}
			nc, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if overTLS != nil {
				tc := tls.Client(nc, overTLS)
				if err := tc.Handshake(); err != nil {
					nc.Close()
					continue // refused before a byte of the protocol: nothing learned
				}
				nc = tc
			}
			fmt.Fprintf(nc, "HERD-PEER 2 %s %s %s\n", from, server, strings.Repeat("0f", 16))
			fmt.Fprintf(nc, "HERD-PEER-AUTH %s\n", p)
			fmt.Fprintf(nc, "SYNC 0 0\n")
			fmt.Fprintf(nc, "AT %s +0.000000001 victim +10+10 9223372036854775807.999999999\n", from)
			fmt.Fprintf(nc, "HERD-PEER 1 %s %s %s\n", from, server, strings.Repeat("0f", 16))
			fmt.Fprintf(nc, "PROBE-END\n")
			// A client port answers every line, the sentinel last; a peer
			// port closes the connection.
			r := bufio.NewReader(nc)
			for {
				line, err := r.ReadString('\n')
				got.WriteString(line)
				if err != nil || line == "? PROBE-END\n" {
					break
				}
			}
			nc.Close()
		}
	}
	return got.String()
}

// securityConfig is the default herd on free ports, with Goloman and Welsh
// taking their links on a separate peer listener, so both kinds of
// listener are attacked.
func securityConfig(t *testing.T) *config.Config {
	cfg := defaultConfig(t)
	for i, s := range cfg.Servers {
		if s.Name == "Goloman" || s.Name == "Welsh" {
			cfg.Servers[i].PeerAddr = "127.0.0.1:0"
		}
	}
	return cfg
}

// TestOutsiderReadsAndChangesNothing speaks the peer protocol to every
// listener of every server, in every mode, and checks that the outsider got
// no location and that every table is byte-identical afterwards.
func TestOutsiderReadsAndChangesNothing(t *testing.T) {
	certs := makeCerts(t, "Goloman", "Hands", "Holiday", "Welsh", "Wilkes")
	strangerCerts := makeCerts(t, "Hands")
	for _, mode := range []string{"secret", "up", "tls", "protected"} {
		t.Run(mode, func(t *testing.T) {
			cfg := securityConfig(t)
			o := Options{Config: cfg}
			var overTLS *tls.Config
			switch mode {
			case "secret":
				o.Secrets = [][]byte{[]byte("a-real-secret-of-32-bytes-length")}
			case "up":
				o.Secrets = [][]byte{[]byte(fmt.Sprintf("%x", time.Now().UnixNano()) + "-random-at-start")}
			case "tls":
				tlsConfig(cfg, certs)
				overTLS = &tls.Config{Certificates: []tls.Certificate{loadCert(t, strangerCerts, "Hands")}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
			case "protected":
				o.Listen = func(network, addr string) (net.Listener, error) {
					ln, err := net.Listen(network, addr)
					return remoteListener{ln}, err
				}
			}
			h := startWith(t, o)
			for i := range 20 {
				ask(t, h.Member("Hands").ClientAddr, fmt.Sprintf("IAMAT client-%d +%d.5-118.25 %d", i, i, 1000+i))
			}
			waitFor(t, 5*time.Second, "every server to know every client", func() bool {
				for _, m := range h.Members() {
					if m.Table.Len() != 20 {
						return false
					}
				}
				return true
			})
			before := tables(h)
			for _, m := range h.Members() {
				addrs := []string{m.ClientAddr}
				if m.PeerAddr != m.ClientAddr {
					addrs = append(addrs, m.PeerAddr)
				}
				for _, addr := range addrs {
					got := attack(t, addr, m.Name, cfg.Links(m.Name), nil)
					if overTLS != nil {
						got += attack(t, addr, m.Name, cfg.Links(m.Name), overTLS)
					}
					for _, line := range strings.Split(got, "\n") {
						if strings.HasPrefix(line, "AT ") || strings.Contains(line, "client-") {
							t.Fatalf("%s %s: the outsider received a location: %q", m.Name, addr, line)
						}
					}
				}
			}
			// An update after the attacks crosses the herd: had an injected
			// record been accepted, it would have arrived by now too.
			at := strings.TrimSuffix(ask(t, h.Member("Welsh").ClientAddr, "IAMAT marker +1+1 1"), "\n")
			waitFor(t, 5*time.Second, "the marker everywhere", func() bool {
				for _, m := range h.Members() {
					if known(m, "marker") != at {
						return false
					}
				}
				return true
			})
			after := tables(h)
			for name, lines := range before {
				got := slices.DeleteFunc(after[name], func(l string) bool { return l == at })
				if !slices.Equal(got, lines) {
					t.Errorf("%s: table changed:\nbefore %q\nafter  %q", name, lines, got)
				}
			}
		})
	}
}

// tlsHerd starts Goloman alone (with a separate peer port) using the
// certificates in dir; its log records go to the returned buffer.
func tlsHerd(t *testing.T, dir string) (*Member, *syncBuffer) {
	cfg := securityConfig(t)
	tlsConfig(cfg, dir)
	logs := &syncBuffer{}
	h := startWith(t, Options{Config: cfg, Names: []string{"Goloman"}, Progress: slog.New(slog.NewTextHandler(logs, nil))})
	return h.Member("Goloman"), logs
}

// TestTLSRefusals: a certificate from another CA, an expired one, a valid
// one naming another server, and a plaintext hello are refused, each with
// its reason logged and counted.
func TestTLSRefusals(t *testing.T) {
	dir := makeCerts(t, "Goloman", "Hands", "Welsh")
	other := makeCerts(t, "Hands")
	caPool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caPool.AppendCertsFromPEM(caPEM)
	hello := fmt.Sprintf("HERD-PEER 2 Hands Goloman %s\nHERD-PEER-AUTH -\n", strings.Repeat("0f", 16))
	// try dials g's peer port as Hands with cert (nil: plaintext) and
	// returns what came back.
	try := func(g *Member, cert *tls.Certificate) string {
		nc, err := net.DialTimeout("tcp", g.PeerAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if cert != nil {
			tc := tls.Client(nc, &tls.Config{Certificates: []tls.Certificate{*cert}, RootCAs: caPool, ServerName: "Goloman", MinVersion: tls.VersionTLS13})
			if err := tc.Handshake(); err != nil {
				return "handshake: " + err.Error()
			}
			nc = tc
		}
		io.WriteString(nc, hello)
		// Until the server closes, or its first line if that accepts.
		var got strings.Builder
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			got.WriteString(line)
			if err != nil || strings.HasPrefix(line, "HERD-PEER-OK") {
				return got.String()
			}
		}
	}
	cases := []struct {
		name   string
		cert   *tls.Certificate
		reason string // the refusal's label
		logged string // in the log
	}{
		{"another CA", ptr(loadCert(t, other, "Hands")), "credential", "certificate signed by unknown authority"},
		{"expired", ptr(signCert(t, dir, "Hands", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))), "credential", "expired"},
		{"names another server", ptr(loadCert(t, dir, "Welsh")), "credential", "claims to be Hands but its certificate names [Welsh]"},
		{"plaintext", nil, "mode", "plaintext hello to a TLS peer port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, logs := tlsHerd(t, dir) // a herd each: refusals are logged once a minute per reason
			got := try(g, tc.cert)
			if strings.Contains(got, "HERD-PEER-OK") || strings.Contains(got, "AT ") {
				t.Fatalf("accepted: %q", got)
			}
			waitFor(t, 5*time.Second, "the refusal to be counted", func() bool { return g.Peers.Refusals()[tc.reason] > 0 })
			waitFor(t, 5*time.Second, "the refusal to be logged", func() bool { return strings.Contains(logs.String(), tc.logged) })
			for _, l := range g.Peers.Links() {
				if l.Up {
					t.Fatalf("link to %s is up", l.Peer)
				}
			}
			// The right certificate is accepted.
			if got := try(g, ptr(loadCert(t, dir, "Hands"))); !strings.Contains(got, "HERD-PEER-OK 2 Goloman ") {
				t.Fatalf("Hands' own certificate refused: %q", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestTLSLinksFlood: a herd with [peer.tls] links up and floods, and
// reports when its certificate expires.
func TestTLSLinksFlood(t *testing.T) {
	dir := makeCerts(t, "Goloman", "Hands", "Holiday", "Welsh", "Wilkes")
	cfg := securityConfig(t)
	tlsConfig(cfg, dir)
	h := startWith(t, Options{Config: cfg})
	at := strings.TrimSuffix(ask(t, h.Member("Hands").ClientAddr, "IAMAT tls-client +1+1 1"), "\n")
	waitFor(t, 5*time.Second, "Welsh to learn the update over TLS links", func() bool { return known(h.Member("Welsh"), "tls-client") == at })
	if exp := h.Member("Welsh").certExpiry; time.Until(exp) < 800*24*time.Hour {
		t.Fatalf("certificate expiry %v", exp)
	}
}

// mitm puts a proxy with hook between Holiday (dialing) and Welsh, each in
// a herd of its own with the same secret, and waits for the link.
func mitm(t *testing.T, hook faultproxy.Hook) (holiday, welsh *Member, proxyAddr string) {
	t.Helper()
	secret := [][]byte{[]byte("shared-secret-for-both-servers!!")}
	a := startWith(t, Options{Config: defaultConfig(t), Names: []string{"Welsh"}, Secrets: secret})
	welsh = a.Member("Welsh")
	p := newProxy(t, welsh.ClientAddr)
	p.SetHook(hook)
	cfg := defaultConfig(t)
	cfg.Servers[3].Addr = p.Addr()
	b := startWith(t, Options{Config: cfg, Names: []string{"Holiday"}, Secrets: secret})
	holiday = b.Member("Holiday")
	waitFor(t, 5*time.Second, "the link through the proxy", func() bool { return linkOf(holiday, "Welsh").Up && linkOf(welsh, "Holiday").Up })
	return holiday, welsh, p.Addr()
}

// carrierHook returns a proxy hook that, once armed, appends extra to the
// first chunk from Holiday carrying the record of client "carrier": the
// live connection's, after its handshake.
func carrierHook(extra string) (hook faultproxy.Hook, arm func()) {
	var mu sync.Mutex
	armed := false
	hook = func(up bool, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if up && armed && bytes.Contains(b, []byte(" carrier ")) {
			armed = false
			return append(slices.Clone(b), extra...)
		}
		return b
	}
	return hook, func() {
		mu.Lock()
		armed = true
		mu.Unlock()
	}
}

// TestSecretLinkRefusesInjection: a line injected after the handshake
// closes the link and is not applied; the link comes back by itself.
func TestSecretLinkRefusesInjection(t *testing.T) {
	hook, arm := carrierHook("AT Holiday +0.000000001 victim +1+1 5 0123456789abcdef0123456789abcdef\n")
	holiday, welsh, _ := mitm(t, hook)
	arm()
	// Traffic to carry the injection: an update from Holiday to Welsh.
	at := strings.TrimSuffix(ask(t, holiday.ClientAddr, "IAMAT carrier +1+1 1"), "\n")
	waitFor(t, 5*time.Second, "Welsh to drop the link for a bad MAC", func() bool {
		return linkOf(welsh, "Holiday").Down[peer.CloseBadMAC] > 0
	})
	waitFor(t, 5*time.Second, "the link back, and the carrier delivered", func() bool {
		return linkOf(welsh, "Holiday").Up && known(welsh, "carrier") == at
	})
	if got := known(welsh, "victim"); got != "" {
		t.Fatalf("injected record applied: %q", got)
	}
}

// TestSecretLinkRefusesAlteration: a record altered on the wire closes the
// link; the real record then arrives by catch-up, the altered one never.
func TestSecretLinkRefusesAlteration(t *testing.T) {
	var mu sync.Mutex
	altered := false
	holiday, welsh, _ := mitm(t, func(up bool, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if up && !altered && bytes.Contains(b, []byte(" alter-me +1+1 ")) {
			altered = true
			return bytes.Replace(b, []byte(" alter-me +1+1 "), []byte(" alter-me +2+1 "), 1)
		}
		return b
	})
	at := strings.TrimSuffix(ask(t, holiday.ClientAddr, "IAMAT alter-me +1+1 1"), "\n")
	waitFor(t, 5*time.Second, "Welsh to drop the link for a bad MAC", func() bool {
		return linkOf(welsh, "Holiday").Down[peer.CloseBadMAC] > 0
	})
	waitFor(t, 5*time.Second, "the real record by catch-up", func() bool { return known(welsh, "alter-me") == at })
}

// TestReplayedHandshakeRefused: the dialer's handshake lines, recorded on
// the wire and played again, do not make a link.
func TestReplayedHandshakeRefused(t *testing.T) {
	var mu sync.Mutex
	var recorded []byte
	_, welsh, _ := mitm(t, func(up bool, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if up && len(recorded) < 4096 {
			recorded = append(recorded, b...)
		}
		return b
	})
	mu.Lock()
	lines := strings.SplitAfter(string(recorded), "\n")
	mu.Unlock()
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "HERD-PEER 2 Holiday Welsh ") || !strings.HasPrefix(lines[1], "HERD-PEER-AUTH ") {
		t.Fatalf("recorded %q", lines)
	}
	before := welsh.Peers.Refusals()["credential"]
	c := dial(t, welsh.ClientAddr)
	c.send(lines[0])
	if got := c.line(); !strings.HasPrefix(got, "HERD-PEER-OK 2 Welsh ") {
		t.Fatalf("hello answered %q", got)
	}
	c.send(lines[1])
	if got := c.line(); got != "? "+lines[1] {
		t.Fatalf("replayed proof answered %q", got)
	}
	if welsh.Peers.Refusals()["credential"] != before+1 {
		t.Fatal("replayed proof not counted as a refused credential")
	}
}

// TestHalfOpenHandshakesBounded: thousands of connections to a peer port
// that never say hello hold at most MaxHandshakes slots, and clients are
// answered throughout.
func TestHalfOpenHandshakesBounded(t *testing.T) {
	cfg := securityConfig(t)
	h := startWith(t, Options{Config: cfg, Secrets: [][]byte{[]byte("a-real-secret-of-32-bytes-length")}})
	g := h.Member("Goloman")
	const n = 5000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", g.PeerAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if got := g.Peers.HandshakesInProgress(); got > peer.MaxHandshakes {
			t.Fatalf("%d handshakes in progress", got)
		}
	}
	for i := range 20 {
		if got := ask(t, g.ClientAddr, fmt.Sprintf("IAMAT busy-%d +1+1 1", i)); !strings.HasPrefix(got, "AT Goloman ") {
			t.Fatalf("client answered %q", got)
		}
	}
	at := known(g, "busy-19")
	waitFor(t, 5*time.Second, "the flood to go on", func() bool { return known(h.Member("Welsh"), "busy-19") == at })
}

// newProxy starts a fault proxy to target, closed at cleanup.
func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestPeerLineOverLimitClosesOnlyThatLink: a line longer than the record
// limit arriving on a link closes that link alone, logged once, and the
// link comes back.
func TestPeerLineOverLimitClosesOnlyThatLink(t *testing.T) {
	hook, arm := carrierHook(strings.Repeat("x", protocol.MaxRecordBytes+1024) + "\n")
	holiday, welsh, _ := mitm(t, hook)
	arm()
	at := strings.TrimSuffix(ask(t, holiday.ClientAddr, "IAMAT carrier +1+1 1"), "\n")
	waitFor(t, 5*time.Second, "Welsh to drop the link for the long line", func() bool {
		return linkOf(welsh, "Holiday").Down[peer.CloseLineTooLong] == 1
	})
	waitFor(t, 5*time.Second, "the link back, and the carrier delivered", func() bool {
		return linkOf(welsh, "Holiday").Up && known(welsh, "carrier") == at
	})
	if d := linkOf(welsh, "Holiday").Down; d[peer.CloseLineTooLong] != 1 {
		t.Fatalf("link-down counts %v: want one line_too_long", d)
	}
}
