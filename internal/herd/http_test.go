package herd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/httpapi"
	"herd/internal/pki"
)

// httpConfig is the built-in herd on free loopback ports, each server with
// an http listener.
func httpConfig(t testing.TB) *config.Config {
	cfg := defaultConfig(t)
	for i := range cfg.Servers {
		cfg.Servers[i].HTTP = "127.0.0.1:0"
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// httpDo sends one request to a member's http listener and returns the
// status and body.
func httpDo(t testing.TB, c *http.Client, method, url, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

func closeIdle(t testing.TB) { t.Cleanup(http.DefaultClient.CloseIdleConnections) }

// Hands and Welsh are the farthest apart in the built-in herd (3 links).
func TestHTTPReportReadOverTCPAtFarthest(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	hands, welsh := h.Member("Hands"), h.Member("Welsh")
	code, body, _ := httpDo(t, nil, "POST", "http://"+hands.HTTPAddr+"/v1/locations",
		`{"client": "kiwi.cs.ucla.edu", "lat": 34.068930, "lon": -118.445127, "time": "1621464827.959498503"}`, nil)
	if code != 200 {
		t.Fatalf("POST: %d %s", code, body)
	}
	var loc httpapi.Location
	if err := json.Unmarshal([]byte(body), &loc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.At, "AT Hands +") || !strings.HasSuffix(loc.At, " kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503") {
		t.Fatalf("at = %q", loc.At)
	}
	waitFor(t, 5*time.Second, "the report at Welsh", func() bool { return known(welsh, "kiwi.cs.ucla.edu") != "" })
	c := dial(t, welsh.ClientAddr)
	c.send("WHATSAT kiwi.cs.ucla.edu 10 5\n")
	at, _ := c.whatsatReply()
	if at != loc.At+"\n" {
		t.Fatalf("WHATSAT at Welsh: %q, HTTP at Hands: %q", at, loc.At)
	}
	// The same values over TCP IAMAT at Hands make the same line (bar the
	// time difference, which is Hands's clock).
	got := ask(t, hands.ClientAddr, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	if got != loc.At+"\n" {
		t.Fatalf("the same IAMAT over TCP got %q, want the stored %q", got, loc.At)
	}
}

func TestTCPReportReadOverHTTP(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	hands, welsh := h.Member("Hands"), h.Member("Welsh")
	at := ask(t, welsh.ClientAddr, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	waitFor(t, 5*time.Second, "the report at Hands", func() bool { return known(hands, "kiwi.cs.ucla.edu") != "" })
	code, body, _ := httpDo(t, nil, "GET", "http://"+hands.HTTPAddr+"/v1/clients/kiwi.cs.ucla.edu", "", nil)
	var loc httpapi.Location
	if err := json.Unmarshal([]byte(body), &loc); code != 200 || err != nil {
		t.Fatalf("GET: %d %s", code, body)
	}
	if loc.At+"\n" != at || loc.Server != "Welsh" || loc.Time != "1621464827.959498503" || loc.Lat != "34.06893" || loc.Lon != "-118.445127" {
		t.Fatalf("GET at Hands = %+v, IAMAT at Welsh answered %q", loc, at)
	}
}

func TestHTTPPlacesBodyIsTCPWhatsatBody(t *testing.T) {
	closeIdle(t)
	h := startHerd(t, httpConfig(t), nil)
	hands, welsh := h.Member("Hands"), h.Member("Welsh")
	ask(t, hands.ClientAddr, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	waitFor(t, 5*time.Second, "the report at Welsh", func() bool { return known(welsh, "kiwi.cs.ucla.edu") != "" })
	for _, m := range []*Member{hands, welsh} {
		c := dial(t, m.ClientAddr)
		c.send("WHATSAT kiwi.cs.ucla.edu 10 1\n")
		at, tcpBody := c.whatsatReply()
		code, body, hdr := httpDo(t, nil, "GET", "http://"+hands.HTTPAddr+"/v1/clients/kiwi.cs.ucla.edu/places?radius_km=10&bound=1", "", nil)
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("GET places: %d %s", code, body)
		}
		// The TCP reply is the AT line, the JSON, and "\n\n": the JSON is
		// the HTTP body byte for byte.
		if body+"\n" != tcpBody {
			t.Fatalf("HTTP body at Hands:\n%q\nTCP WHATSAT body at %s:\n%q", body, m.Name, tcpBody)
		}
		if hdr.Get("Herd-At")+"\n" != at {
			t.Fatalf("Herd-At %q, TCP AT line %q", hdr.Get("Herd-At"), at)
		}
	}
}

// writeTokens writes a tokens file for two family members and returns its
// path.
func writeTokens(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "tokens.toml")
	err := os.WriteFile(path, []byte(`
[[token]]
name  = "alice"
token = "alice-secret-token-0123"
write = ["alice/*"]
read  = ["alice/*", "bob/*"]

[[token]]
name  = "bob"
token = "bob-secret-token-012345"
write = ["bob/*"]
read  = ["alice/*", "bob/*"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOwnTracksFamilyAcrossServers(t *testing.T) {
	closeIdle(t)
	cfg := httpConfig(t)
	cfg.HTTP.TokensFile = writeTokens(t)
	h := startHerd(t, cfg, nil)
	hands, welsh := h.Member("Hands"), h.Member("Welsh")
	post := func(m *Member, user, token, device, body string) []map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+m.HTTPAddr+"/owntracks", strings.NewReader(body))
		req.SetBasicAuth(user, token)
		req.Header.Set("X-Limit-U", user)
		req.Header.Set("X-Limit-D", device)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var friends []map[string]any
		if err := json.NewDecoder(res.Body).Decode(&friends); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", user, res.StatusCode, err)
		}
		return friends
	}
	// A stranger's location: alice and bob may not read it.
	ask(t, hands.ClientAddr, "IAMAT carol/phone +48.8584+2.2945 1621464800")
	if f := post(hands, "alice", "alice-secret-token-0123", "phone",
		`{"_type":"location","acc":14,"alt":73,"batt":85,"lat":48.856826,"lon":2.292713,"tid":"ph","tst":1621464827,"vel":12,"t":"u","created_at":1621464830}`); len(f) != 0 {
		t.Fatalf("alice's first friends: %v", f)
	}
	waitFor(t, 5*time.Second, "alice at Welsh", func() bool { return known(welsh, "alice/phone") != "" && known(welsh, "carol/phone") != "" })
	f := post(welsh, "bob", "bob-secret-token-012345", "phone", `{"_type":"location","lat":48.8606,"lon":2.3376,"tst":1621464829}`)
	if len(f) != 1 || f[0]["topic"] != "owntracks/alice/phone" || f[0]["tid"] != "AP" || f[0]["lat"] != 48.856826 {
		t.Fatalf("bob's friends at Welsh: %v", f)
	}
	waitFor(t, 5*time.Second, "bob at Hands", func() bool { return known(hands, "bob/phone") != "" })
	f = post(hands, "alice", "alice-secret-token-0123", "phone", `{"_type":"location","lat":48.857,"lon":2.293,"tst":1621464840}`)
	if len(f) != 1 || f[0]["topic"] != "owntracks/bob/phone" || f[0]["lon"] != 2.3376 {
		t.Fatalf("alice's friends at Hands: %v", f)
	}
}

func TestHTTPListenerBindErrorStopsStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := httpConfig(t)
	cfg.Servers[4].HTTP = ln.Addr().String()
	h, err := Start(Options{Config: cfg})
	if err == nil {
		h.Close(context.Background())
		t.Fatal("Start succeeded with the http address taken")
	}
	if !strings.Contains(err.Error(), "server Wilkes: http: listen on "+ln.Addr().String()) {
		t.Fatalf("error %q does not name the listener", err)
	}
}

func TestHTTPSListener(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueServer(dir, "Goloman", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cfg := httpConfig(t)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	cfg.HTTP.TLS = config.TLSFiles{CertFile: filepath.Join(dir, "{name}.crt"), KeyFile: filepath.Join(dir, "{name}.key")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, cfg, nil)
	m := h.Member("Goloman")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	code, body, _ := httpDo(t, c, "POST", "https://"+m.HTTPAddr+"/v1/locations", `{"client": "tls", "lat": 1, "lon": 2}`, nil)
	if code != 200 || !strings.Contains(body, `"at":"AT Goloman`) {
		t.Fatalf("HTTPS POST: %d %s", code, body)
	}
	// Plain HTTP on the HTTPS listener gets no answer from the API.
	code, _, _ = httpDo(t, nil, "GET", "http://"+m.HTTPAddr+"/v1/clients/tls", "", nil)
	if code != http.StatusBadRequest {
		t.Fatalf("plain HTTP on the HTTPS listener: %d", code)
	}
}

func TestHTTPShutdownWithMember(t *testing.T) {
	cfg := httpConfig(t)
	h, err := Start(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	addr := h.Member("Goloman").HTTPAddr
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	if code, body, _ := httpDo(t, c, "POST", "http://"+addr+"/v1/locations", `{"client": "a", "lat": 1, "lon": 2}`, nil); code != 200 {
		t.Fatal(code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the http listener still accepts after Close")
	}
}
