package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"Goloman": {"Hands", "Holiday", "Wilkes"},
		"Hands":   {"Goloman", "Wilkes"},
		"Holiday": {"Goloman", "Welsh", "Wilkes"},
		"Welsh":   {"Holiday"},
		"Wilkes":  {"Goloman", "Hands", "Holiday"},
	}
	for name, links := range want {
		if got := c.Links(name); !reflect.DeepEqual(got, links) {
			t.Errorf("Links(%s) = %v, want %v", name, got, links)
		}
	}
	if s, _ := c.Server("Welsh"); s.Addr != "127.0.0.1:12003" {
		t.Errorf("Welsh addr %q", s.Addr)
	}
	if c.Places.Provider != "offline" || c.Client.MaxLineBytes != 4096 || c.Peer.RetryMax.D != time.Second {
		t.Errorf("defaults not set: %+v", c)
	}
}

func TestParseFull(t *testing.T) {
	c, err := Parse("h.toml", []byte(`
log_dir = "l"
data_dir = "d"
peer_secret_file = "s"
[client]
one_shot = true
idle_timeout = "90s"
[places]
provider = "google"
endpoint = "http://127.0.0.1:9/x"
timeout = "3s"
[[server]]
name = "A"
addr = "127.0.0.1:1"
peer_addr = "127.0.0.1:2"
metrics = "127.0.0.1:3"
neighbors = ["B"]
[[server]]
name = "B"
addr = "127.0.0.1:4"
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Client.OneShot || c.Client.IdleTimeout.D != 90*time.Second || c.Places.Timeout.D != 3*time.Second ||
		c.LogDir != "l" || c.DataDir != "d" || c.PeerSecretFile != "s" || c.Places.Endpoint != "http://127.0.0.1:9/x" {
		t.Fatalf("got %+v", c)
	}
	if got := c.Links("B"); !reflect.DeepEqual(got, []string{"A"}) {
		t.Fatalf("links are not symmetric: Links(B) = %v", got)
	}
	a, _ := c.Server("A")
	b, _ := c.Server("B")
	if a.PeerAddrOf() != "127.0.0.1:2" || b.PeerAddrOf() != "127.0.0.1:4" {
		t.Fatalf("PeerAddrOf: %s %s", a.PeerAddrOf(), b.PeerAddrOf())
	}
}

func TestParseErrors(t *testing.T) {
	const two = `
[[server]]
name = "A"
addr = "127.0.0.1:1"
[[server]]
name = "B"
addr = "127.0.0.1:2"
`
	tests := map[string]struct {
		toml string
		want string // substring of the error
	}{
		"syntax":            {"log_dir = ", "h.toml:1"},
		"unknown key":       {"colour = 1\n" + two, "unknown key colour"},
		"no servers":        {"", "server: no servers"},
		"unknown neighbour": {two + `neighbors = ["C"]`, `server[1].neighbors: unknown server "C"`},
		"self link":         {two + `neighbors = ["B"]`, "server[1].neighbors: server B lists itself"},
		"duplicate name":    {two + "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:3\"\n", `server[2].name: duplicate server name "A"`},
		"duplicate addr":    {two + "[[server]]\nname = \"C\"\naddr = \"127.0.0.1:2\"\n", "server[2].addr: address 127.0.0.1:2 is already used by B"},
		"peer addr clash":   {two + `peer_addr = "127.0.0.1:1"`, "server[1].peer_addr: address 127.0.0.1:1 is already used by A"},
		"bad addr":          {"[[server]]\nname = \"A\"\naddr = \"nowhere\"\n", `server[0].addr: bad address "nowhere"`},
		"missing addr":      {"[[server]]\nname = \"A\"\n", "server[0].addr: missing"},
		"bad name":          {"[[server]]\nname = \"A B\"\naddr = \"127.0.0.1:1\"\n", "server[0].name: bad server name"},
		"bad duration":      {"[client]\nidle_timeout = \"soon\"\n" + two, `bad duration "soon"`},
		"negative duration": {"[client]\nidle_timeout = \"-1s\"\n" + two, "must not be negative"},
		"unknown provider":  {"[places]\nprovider = \"bing\"\n" + two, `places.provider: unknown provider "bing"`},
		"tiny line limit":   {"[client]\nmax_line_bytes = 10\n" + two, "client.max_line_bytes: 10 out of range"},
		"wrong type":        {"[client]\none_shot = \"yes\"\n" + two, "h.toml"},
		"dead before beat":  {"[peer]\nheartbeat = \"5s\"\ndead_after = \"5s\"\n" + two, "peer.dead_after"},
		"huge line limit":   {"[client]\nmax_line_bytes = 200000\n" + two, "client.max_line_bytes: 200000 out of range: want 64 to 65437"},
		"negative per ip":   {"[client]\nmax_conns_per_ip = -1\n" + two, "client.max_conns_per_ip"},
		"negative clients":  {"[locations]\nmax_clients = -5\n" + two, "locations.max_clients"},
		"bad skew":          {"[locations]\nmax_clock_skew = \"a day\"\n" + two, `bad duration "a day"`},
		"log_keep":          {"log_keep = -1\n" + two, "log_keep"},
		"log_keep 0":        {"log_keep = 0\n" + two, "log_keep: 0 out of range"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("h.toml", []byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "h.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestLogDir(t *testing.T) {
	const one = "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\n"
	c, err := Parse("h.toml", []byte(one))
	if err != nil || c.LogDir != "logs" {
		t.Fatalf("default log_dir %q, %v", c.LogDir, err)
	}
	c, err = Parse("h.toml", []byte("log_dir = \"\"\n"+one))
	if err != nil || c.LogDir != "" {
		t.Fatalf("log_dir = \"\" gave %q, %v; want log files off", c.LogDir, err)
	}
}

func TestPortZeroMayRepeat(t *testing.T) {
	_, err := Parse("h.toml", []byte("[[server]]\nname = \"A\"\naddr = \"127.0.0.1:0\"\n[[server]]\nname = \"B\"\naddr = \"127.0.0.1:0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
}

// TestExamples loads every config under examples/ and checks the course
// topologies they claim in their first line.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(f)
		if !strings.HasPrefix(string(data), "# ") {
			t.Errorf("%s: the first line should say which topology it is", f)
		}
		for _, s := range c.Servers {
			if s.PeerAddr == "" {
				t.Errorf("%s: %s has no peer_addr", f, s.Name)
			}
		}
	}
	c, err := Load("../../examples/course-2020.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"Hill":      {"Jaquez", "Smith"},
		"Singleton": {"Campbell", "Jaquez", "Smith"},
		"Smith":     {"Campbell", "Hill", "Singleton"},
		"Campbell":  {"Singleton", "Smith"},
		"Jaquez":    {"Hill", "Singleton"},
	}
	for name, links := range want {
		if got := c.Links(name); !reflect.DeepEqual(got, links) {
			t.Errorf("course-2020 Links(%s) = %v, want %v", name, got, links)
		}
	}
}

// TestLimitDefaults: the limits of SPEC §9, with "0" kept where it means
// "no bound" and the Google rate limit only for the Google providers.
func TestLimitDefaults(t *testing.T) {
	const one = "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\n"
	tests := map[string]struct {
		toml  string
		check func(c *Config) bool
	}{
		"defaults": {one, func(c *Config) bool {
			return c.Locations.MaxClockSkew.D == 24*time.Hour && c.Locations.MaxClients == 5_000_000 && c.Locations.TTL.D == 0 &&
				c.LogMaxMB == 100 && c.LogKeep == 5 && c.Client.MaxConnsPerIP == 0 &&
				c.Places.RateLimit == 0 && c.Places.RateBurst == 20 && c.Places.CacheBytes == 64<<20
		}},
		"skew 0 is no bound": {"[locations]\nmax_clock_skew = \"0\"\nttl = \"72h\"\nmax_clients = 10\n" + one, func(c *Config) bool {
			return c.Locations.MaxClockSkew.D == 0 && c.Locations.TTL.D == 72*time.Hour && c.Locations.MaxClients == 10
		}},
		"google is rate limited": {"[places]\nprovider = \"google\"\n" + one, func(c *Config) bool {
			return c.Places.RateLimit == 10 && c.Places.RateBurst == 20
		}},
		"google-new is rate limited": {"[places]\nprovider = \"google-new\"\n" + one, func(c *Config) bool { return c.Places.RateLimit == 10 }},
		"explicit 0 is unlimited":    {"[places]\nprovider = \"google\"\nrate_limit = 0\n" + one, func(c *Config) bool { return c.Places.RateLimit == 0 }},
		"largest line":               {"[client]\nmax_line_bytes = 65437\nmax_conns_per_ip = 3\n" + one, func(c *Config) bool { return c.Client.MaxLineBytes == 65437 && c.Client.MaxConnsPerIP == 3 }},
		"log rotation":               {"log_max_mb = 1\nlog_keep = 2\n" + one, func(c *Config) bool { return c.LogMaxMB == 1 && c.LogKeep == 2 }},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("h.toml", []byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("got locations %+v, places %+v, client %+v, log_max_mb %d, log_keep %d", c.Locations, c.Places, c.Client, c.LogMaxMB, c.LogKeep)
			}
		})
	}
	if d := Default(); d.Locations.MaxClockSkew.D != 24*time.Hour || d.Locations.MaxClients != 5_000_000 {
		t.Fatalf("Default() locations %+v", d.Locations)
	}
}

func TestTLSSettings(t *testing.T) {
	const linked = "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\nneighbors = [\"B\"]\n[[server]]\nname = \"B\"\naddr = \"127.0.0.1:2\"\n"
	tests := map[string]struct {
		toml string
		want string // substring of the error; empty: valid
	}{
		"peer tls":            {"[peer.tls]\nca_file = \"c\"\ncert_file = \"{name}.crt\"\nkey_file = \"{name}.key\"\n" + linked, ""},
		"peer tls no key":     {"[peer.tls]\nca_file = \"c\"\ncert_file = \"{name}.crt\"\n" + linked, "peer.tls.key_file: missing"},
		"peer tls no ca":      {"[peer.tls]\ncert_file = \"x\"\nkey_file = \"y\"\n" + linked, "peer.tls.ca_file: missing"},
		"client tls shared":   {"[client.tls]\ncert_file = \"x\"\nkey_file = \"y\"\n" + linked, "server[0].peer_addr: server A needs its own peer_addr"},
		"client tls no cert":  {"[client.tls]\nkey_file = \"y\"\n" + linked, "client.tls.cert_file: missing"},
		"client tls with ca":  {"[client.tls]\nca_file = \"c\"\ncert_file = \"x\"\nkey_file = \"y\"\n" + linked, "client.tls.ca_file: not used"},
		"client tls own port": {"[client.tls]\ncert_file = \"x\"\nkey_file = \"y\"\n" + strings.Replace(linked, "neighbors", "peer_addr = \"127.0.0.1:3\"\nneighbors", 1) + "peer_addr = \"127.0.0.1:4\"\n", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("h.toml", []byte(tt.toml))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Peer.TLS.Expand("A").CertFile; c.Peer.TLS.On() && got != "A.crt" {
					t.Fatalf("expanded cert_file %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnprotected(t *testing.T) {
	cfgOf := func(extra, addrA, peerA string) *Config {
		text := extra + fmt.Sprintf("[[server]]\nname = \"A\"\naddr = %q\npeer_addr = %q\nadvertise = \"10.9.9.9:3\"\nneighbors = [\"B\"]\n[[server]]\nname = \"B\"\naddr = \"127.0.0.1:2\"\n[[server]]\nname = \"Lone\"\naddr = \"0.0.0.0:5\"\n", addrA, peerA)
		c, err := Parse("h.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := map[string]struct {
		c         *Config
		names     []string
		hasSecret bool
		want      string
	}{
		"loopback":              {cfgOf("", "127.0.0.1:1", "[::1]:3"), nil, false, ""},
		"localhost":             {cfgOf("", "localhost:1", "127.0.0.9:3"), nil, false, ""},
		"open addr":             {cfgOf("", "0.0.0.0:1", "127.0.0.1:3"), nil, false, "server[0].addr: A listens on 0.0.0.0:1"},
		"open peer_addr":        {cfgOf("", "127.0.0.1:1", "10.1.2.3:3"), nil, false, "server[0].peer_addr"},
		"every interface":       {cfgOf("", ":1", "127.0.0.1:3"), nil, false, "server[0].addr"},
		"secret":                {cfgOf("", "0.0.0.0:1", "127.0.0.1:3"), nil, true, ""},
		"insecure":              {cfgOf("insecure = true\n", "0.0.0.0:1", "127.0.0.1:3"), nil, false, ""},
		"tls":                   {cfgOf("[peer.tls]\nca_file = \"c\"\ncert_file = \"x\"\nkey_file = \"y\"\n", "0.0.0.0:1", "127.0.0.1:3"), nil, false, ""},
		"other server only":     {cfgOf("", "0.0.0.0:1", "127.0.0.1:3"), []string{"B"}, false, ""},
		"no neighbours is fine": {cfgOf("", "127.0.0.1:1", "127.0.0.1:3"), []string{"Lone"}, false, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.c.Unprotected(tt.names, tt.hasSecret)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "h.toml") {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAdvertise(t *testing.T) {
	const b = "[[server]]\nname = \"B\"\naddr = \"127.0.0.1:2\"\nneighbors = [\"A\"]\n"
	tests := map[string]struct {
		a    string // server A's keys
		want string // substring of the error; empty: valid, and PeerAddrOf
	}{
		"every interface":         {"addr = \"0.0.0.0:1\"\n", "server[0].addr: 0.0.0.0:1 listens on every interface"},
		"every interface v6":      {"addr = \"[::]:1\"\n", "server[0].addr: [::]:1 listens on every interface"},
		"no host":                 {"addr = \":1\"\n", "server[0].addr: :1 listens on every interface"},
		"peer_addr":               {"addr = \"127.0.0.1:1\"\npeer_addr = \"0.0.0.0:3\"\n", "server[0].peer_addr: 0.0.0.0:3 listens"},
		"advertised":              {"addr = \"0.0.0.0:1\"\nadvertise = \"10.0.0.11:1\"\n", "10.0.0.11:1"},
		"advertise wins":          {"addr = \"127.0.0.1:1\"\npeer_addr = \"127.0.0.1:3\"\nadvertise = \"herd-1.example:3\"\n", "herd-1.example:3"},
		"advertise unspecified":   {"addr = \"0.0.0.0:1\"\nadvertise = \"0.0.0.0:1\"\n", "server[0].advertise: 0.0.0.0:1 is not an address neighbours can dial"},
		"advertise port 0":        {"addr = \"0.0.0.0:1\"\nadvertise = \"10.0.0.11:0\"\n", "server[0].advertise: 10.0.0.11:0"},
		"advertise not host:port": {"addr = \"0.0.0.0:1\"\nadvertise = \"10.0.0.11\"\n", "server[0].advertise: bad address"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("h.toml", []byte("[[server]]\nname = \"A\"\n"+tt.a+b))
			if strings.Contains(tt.want, "listens") || strings.Contains(tt.want, "advertise") {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := c.Server("A"); a.PeerAddrOf() != tt.want {
				t.Fatalf("PeerAddrOf %q, want %q", a.PeerAddrOf(), tt.want)
			}
		})
	}
}

// TestEveryExampleLoads: every herd config shipped under examples/ is valid.
func TestEveryExampleLoads(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "tokens") {
			continue // a tokens file, not a herd config
		}
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}
