package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// herdDir makes a CA and certificates for names in a new directory.
func herdDir(t *testing.T, names ...string) (string, *CA) {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := ca.IssueServer(dir, n, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ca
}

func peerFor(t *testing.T, dir, name string) *Peer {
	t.Helper()
	p, err := NewPeer(filepath.Join(dir, CACertFile), filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPairOf(t *testing.T, dir, name string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type handshakeResult struct {
	serverErr, clientErr error
	server               tls.ConnectionState // as the acceptor saw it
}

// handshake runs one TLS handshake over 127.0.0.1 and, on the client side,
// reads once so a client certificate refused by the server shows up.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type out struct {
		err error
		cs  tls.ConnectionState
	}
	done := make(chan out, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- out{err: err}
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		err = tc.HandshakeContext(ctx)
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		done <- out{err: err, cs: tc.ConnectionState()}
	}()
	var r handshakeResult
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	r.clientErr = tc.HandshakeContext(ctx)
	if r.clientErr == nil {
		buf := make([]byte, 2)
		_, r.clientErr = tc.Read(buf)
	}
	c.Close()
	o := <-done
	r.serverErr, r.server = o.err, o.cs
	return r
}

func TestPKIHandshake(t *testing.T) {
	dir, ca := herdDir(t, "Goloman", "Hands")
	other, _ := herdDir(t, "Goloman", "Hands")
	expiredDir := t.TempDir()
	// An expired certificate from the right CA.
	if _, err := ca.issueServer(expiredDir, "Expired", nil, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}

	goloman, hands := peerFor(t, dir, "Goloman"), peerFor(t, dir, "Hands")
	strangerServer := peerFor(t, other, "Goloman")
	pool := hands.ClientConfig("Goloman").RootCAs

	withCert := func(c tls.Certificate) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "Goloman", RootCAs: pool, Certificates: []tls.Certificate{c}}
	}
	tls12 := hands.ClientConfig("Goloman")
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	tests := map[string]struct {
		server, client *tls.Config
		claimed        string // checked with PeerName on the acceptor's side
		serverErr      string // "" : no error expected
		clientErr      string
		nameErr        string
	}{
		"Hands dials Goloman":     {server: goloman.ServerConfig(), client: hands.ClientConfig("Goloman"), claimed: "Hands"},
		"Goloman dials Hands":     {server: hands.ServerConfig(), client: goloman.ClientConfig("Hands"), claimed: "Goloman"},
		"claims another name":     {server: goloman.ServerConfig(), client: hands.ClientConfig("Goloman"), claimed: "Wilkes", nameErr: `claims to be "Wilkes" but its certificate is for "Hands"`},
		"client from another CA":  {server: goloman.ServerConfig(), client: withCert(keyPairOf(t, other, "Hands")), serverErr: "unknown authority", clientErr: "unknown certificate authority"},
		"server from another CA":  {server: strangerServer.ServerConfig(), client: hands.ClientConfig("Goloman"), serverErr: "bad certificate", clientErr: "unknown authority"},
		"expired client":          {server: goloman.ServerConfig(), client: withCert(keyPairOf(t, expiredDir, "Expired")), serverErr: "expired", clientErr: "expired"},
		"server is not the named": {server: goloman.ServerConfig(), client: hands.ClientConfig("Hands"), serverErr: "bad certificate", clientErr: "valid for Goloman, not Hands"},
		"name differs in case":    {server: goloman.ServerConfig(), client: hands.ClientConfig("goloman"), serverErr: "bad certificate", clientErr: `claims to be "goloman"`},
		"TLS 1.2 client":          {server: goloman.ServerConfig(), client: tls12, serverErr: "unsupported versions", clientErr: "protocol version"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := handshake(t, tt.server, tt.client)
			check := func(side string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", side, err)
				case want != "" && err == nil:
					t.Errorf("%s: no error, want %q", side, want)
				case want != "" && !strings.Contains(err.Error(), want):
					t.Errorf("%s: %v, want %q", side, err, want)
				}
			}
			check("server", r.serverErr, tt.serverErr)
			check("client", r.clientErr, tt.clientErr)
			if tt.serverErr != "" || tt.clientErr != "" {
				return
			}
			if r.server.Version != tls.VersionTLS13 {
				t.Errorf("version %x, want TLS 1.3", r.server.Version)
			}
			check("PeerName", PeerName(r.server, tt.claimed), tt.nameErr)
		})
	}
}

func TestPKIPeerNameUnverified(t *testing.T) {
	err := PeerName(tls.ConnectionState{}, "Hands")
	if err == nil || !strings.Contains(err.Error(), "no verified certificate") {
		t.Fatalf("got %v", err)
	}
}

// TestPKICARollover trusts an old and a new CA at once: a server still on
// the old CA and one already on the new link both ways.
func TestPKICARollover(t *testing.T) {
	oldDir, _ := herdDir(t, "Goloman")
	newDir, _ := herdDir(t, "Hands")
	both := filepath.Join(t.TempDir(), "ca.crt")
	a, _ := os.ReadFile(filepath.Join(oldDir, CACertFile))
	b, _ := os.ReadFile(filepath.Join(newDir, CACertFile))
	if err := os.WriteFile(both, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(dir, name string) *Peer {
		p, err := NewPeer(both, filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	goloman, hands := mk(oldDir, "Goloman"), mk(newDir, "Hands")
	for _, r := range []handshakeResult{
		handshake(t, goloman.ServerConfig(), hands.ClientConfig("Goloman")),
		handshake(t, hands.ServerConfig(), goloman.ClientConfig("Hands")),
	} {
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("server: %v, client: %v", r.serverErr, r.clientErr)
		}
	}
}

func TestPKINewPeerErrors(t *testing.T) {
	dir, ca := herdDir(t, "Goloman", "Hands")
	other, _ := herdDir(t, "Goloman")
	scratch := t.TempDir()
	if _, err := ca.issueServer(scratch, "Old", nil, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(scratch, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o644)
	caFile := filepath.Join(dir, CACertFile)
	crt := func(d, n string) string { return filepath.Join(d, n+".crt") }
	key := func(d, n string) string { return filepath.Join(d, n+".key") }
	missing := filepath.Join(scratch, "nope.crt")

	tests := map[string]struct {
		ca, cert, key string
		want          []string
	}{
		"missing ca_file":   {missing, crt(dir, "Goloman"), key(dir, "Goloman"), []string{"ca_file", missing, "missing"}},
		"ca_file not PEM":   {junk, crt(dir, "Goloman"), key(dir, "Goloman"), []string{"ca_file", junk, "not PEM"}},
		"ca_file not a CA":  {crt(dir, "Hands"), crt(dir, "Goloman"), key(dir, "Goloman"), []string{"ca_file", "is not a CA"}},
		"missing cert_file": {caFile, missing, key(dir, "Goloman"), []string{"cert_file", missing, "missing"}},
		"cert_file not PEM": {caFile, junk, key(dir, "Goloman"), []string{"cert_file", junk, "not PEM"}},
		"key_file not PEM":  {caFile, crt(dir, "Goloman"), junk, []string{"key_file", junk, "not PEM"}},
		"key is a cert":     {caFile, crt(dir, "Goloman"), crt(dir, "Goloman"), []string{"key_file", "no PRIVATE KEY block"}},
		"mismatched key":    {caFile, crt(dir, "Goloman"), key(dir, "Hands"), []string{"key_file", key(dir, "Hands"), "does not match", crt(dir, "Goloman")}},
		"other CA":          {caFile, crt(other, "Goloman"), key(other, "Goloman"), []string{"cert_file", crt(other, "Goloman"), "not signed by a CA in ca_file"}},
		"expired":           {caFile, crt(scratch, "Old"), key(scratch, "Old"), []string{"cert_file", crt(scratch, "Old"), "expired on"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewPeer(tt.ca, tt.cert, tt.key)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestPKIIssueNeverOverwritesKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	issue := func() []FileResult {
		t.Helper()
		ca, res, err := LoadOrCreateCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"Goloman", "Hands"} {
			r, err := ca.IssueServer(dir, n, []string{"127.0.0.1", "0.0.0.0", "herd.example", ""})
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, r...)
		}
		return res
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	summary := func(res []FileResult) string {
		var b strings.Builder
		for _, r := range res {
			rel, _ := filepath.Rel(dir, r.Path)
			if r.Written {
				b.WriteString("wrote " + rel + ";")
			} else {
				b.WriteString("kept " + rel + ";")
			}
		}
		return b.String()
	}

	first := issue()
	if got, want := summary(first), "wrote ca.key;wrote ca.crt;wrote Goloman.key;wrote Goloman.crt;wrote Hands.key;wrote Hands.crt;"; got != want {
		t.Errorf("first run: %s, want %s", got, want)
	}
	files := []string{"ca.key", "ca.crt", "Goloman.key", "Goloman.crt", "Hands.key", "Hands.crt"}
	before := map[string][]byte{}
	for _, f := range files {
		before[f] = read(f)
	}
	for _, f := range []string{"ca.key", "Goloman.key", "Hands.key"} {
		fi, _ := os.Stat(filepath.Join(dir, f))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	second := issue()
	if got, want := summary(second), "kept ca.key;kept ca.crt;kept Goloman.key;wrote Goloman.crt;kept Hands.key;wrote Hands.crt;"; got != want {
		t.Errorf("second run: %s, want %s", got, want)
	}
	for _, f := range []string{"ca.key", "ca.crt", "Goloman.key", "Hands.key"} {
		if !bytes.Equal(before[f], read(f)) {
			t.Errorf("%s changed on the second run", f)
		}
	}
	if bytes.Equal(before["Goloman.crt"], read("Goloman.crt")) {
		t.Error("Goloman.crt not reissued")
	}
	// The reissued certificate is for the kept key, signed by the kept CA.
	p := peerFor(t, dir, "Goloman")
	if err := p.CheckName("Goloman"); err != nil {
		t.Error(err)
	}
	if err := p.CheckName("Hands"); err == nil || !strings.Contains(err.Error(), `"Goloman"`) {
		t.Errorf("CheckName(Hands) = %v", err)
	}
	leaf := p.r.get().cert.Leaf
	if got := strings.Join(leaf.DNSNames, ","); got != "Goloman,herd.example" {
		t.Errorf("DNS SANs %s", got)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if d := time.Until(leaf.NotAfter); d < 824*24*time.Hour || d > 826*24*time.Hour {
		t.Errorf("valid for %v", d)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(files) {
		t.Errorf("%d files in %s, want %d (temporary files left?)", len(entries), dir, len(files))
	}
}

func TestPKICACertWithoutKey(t *testing.T) {
	dir, _ := herdDir(t)
	os.Remove(filepath.Join(dir, CAKeyFile))
	_, _, err := LoadOrCreateCA(dir)
	if err == nil || !strings.Contains(err.Error(), "exists without") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		t.Fatal("a new CA key was made next to the old certificate")
	}
}

func TestPKIExclusiveWriteKeepsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.key")
	os.WriteFile(path, []byte("old"), 0o600)
	if err := writeFile(path, []byte("new"), 0o600, true); err == nil {
		t.Fatal("exclusive write replaced a file")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("file now %q", b)
	}
}

// clock is a manual clock for reload tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestPKIPeerReload(t *testing.T) {
	dir, ca := herdDir(t, "Goloman")
	clk := &clock{time.Now()}
	crt, key := filepath.Join(dir, "Goloman.crt"), filepath.Join(dir, "Goloman.key")
	p, err := newPeer(filepath.Join(dir, CACertFile), crt, key, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	first := p.NotAfter()
	later := time.Now().Add(100 * 24 * time.Hour).Truncate(time.Second)
	if _, err := ca.issueServer(dir, "Goloman", nil, time.Now().Add(-time.Minute), later); err != nil {
		t.Fatal(err)
	}
	clk.advance(500 * time.Millisecond)
	if got := p.NotAfter(); !got.Equal(first) {
		t.Fatalf("reloaded within a second: %v", got)
	}
	clk.advance(time.Second)
	if got := p.NotAfter(); !got.Equal(later) {
		t.Fatalf("NotAfter %v after rotation, want %v", got, later)
	}

	// A bad file keeps the last good load and is reported.
	good, _ := os.ReadFile(crt)
	os.WriteFile(crt, []byte("garbage"), 0o644)
	clk.advance(2 * time.Second)
	if got := p.NotAfter(); !got.Equal(later) {
		t.Fatalf("NotAfter %v after a bad write, want the last good %v", got, later)
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "not PEM") {
		t.Fatalf("Err() = %v", err)
	}
	if r := handshake(t, p.ServerConfig(), p.ClientConfig("Goloman")); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("last good load not used: server %v, client %v", r.serverErr, r.clientErr)
	}
	os.WriteFile(crt, good, 0o644)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
}

func TestPKIKeyPairAndDialConfig(t *testing.T) {
	dir, _ := herdDir(t, "Goloman")
	clk := &clock{time.Now()}
	crt, key := filepath.Join(dir, "Goloman.crt"), filepath.Join(dir, "Goloman.key")
	kp, err := newKeyPair(crt, key, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, CACertFile)
	dial := func(caFile, name string) *tls.Config {
		c, err := DialConfig(caFile, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := map[string]struct {
		client *tls.Config
		want   string
	}{
		"by IP with -ca":    {dial(caFile, "127.0.0.1"), ""},
		"by name with -ca":  {dial(caFile, "Goloman"), ""},
		"wrong name":        {dial(caFile, "Hands"), "not Hands"},
		"system roots":      {dial("", "127.0.0.1"), "unknown authority"},
		"TLS 1.2 is spoken": {&tls.Config{RootCAs: dial(caFile, "").RootCAs, ServerName: "Goloman", MaxVersion: tls.VersionTLS12}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := handshake(t, kp.ServerConfig(), tt.client)
			if tt.want == "" {
				if r.clientErr != nil || r.serverErr != nil {
					t.Fatalf("server %v, client %v", r.serverErr, r.clientErr)
				}
				return
			}
			if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), tt.want) {
				t.Fatalf("client error %v, want %q", r.clientErr, tt.want)
			}
		})
	}
	if _, err := DialConfig(filepath.Join(dir, "Goloman.key"), "x"); err == nil || !strings.Contains(err.Error(), "no CERTIFICATE") {
		t.Errorf("DialConfig with a key file: %v", err)
	}
	if _, err := NewKeyPair(crt, filepath.Join(dir, CAKeyFile)); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("NewKeyPair with the wrong key: %v", err)
	}
	os.WriteFile(key, []byte("garbage"), 0o600)
	clk.advance(2 * time.Second)
	before := kp.NotAfter()
	if kp.Err() == nil {
		t.Error("bad key not reported")
	}
	if !kp.NotAfter().Equal(before) {
		t.Error("last good load not kept")
	}
	if kp.Reload() == nil {
		t.Error("Reload of a bad key returned nil")
	}
}

func TestPKIExpand(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"placeholder": {"certs/{name}.crt", "certs/Hands.crt"},
		"twice":       {"{name}/{name}.key", "Hands/Hands.key"},
		"none":        {"certs/ca.crt", "certs/ca.crt"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Expand(tt.in, "Hands"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
