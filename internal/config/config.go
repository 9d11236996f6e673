// Package config reads a herd's TOML configuration into plain structs,
// fills in defaults and validates it. It does no network I/O.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"herd/internal/protocol"
)

// Config is a whole herd: its servers, their links and shared settings.
type Config struct {
	// File is the path the config was read from; empty for the built-in default.
	File string `toml:"-"`

	LogDir         string `toml:"log_dir"`          // each server logs to <LogDir>/<name>.log; empty: no log files
	DataDir        string `toml:"data_dir"`         // durable state under <DataDir>/<name>/; empty: memory only
	DataSync       string `toml:"data_sync"`        // "always": an IAMAT is answered once fsynced; "fast": once written (fsync within 50ms)
	PeerSecretFile string `toml:"peer_secret_file"` // shared secret(s) for peer links, one per line
	// Insecure lets servers accept unauthenticated peer links from any
	// address; without it, a herd with no credential accepts peers from
	// loopback only and refuses non-loopback listeners.
	Insecure bool `toml:"insecure"`

	LogMaxMB int `toml:"log_max_mb"` // a log file is rotated when it reaches this many MiB
	LogKeep  int `toml:"log_keep"`   // rotated log files kept per server
	// LogLevel is the least severe level logged: "debug", "info", "warn"
	// or "error".
	LogLevel string `toml:"log_level"`

	Client ClientConfig `toml:"client"`
	Peer   PeerConfig   `toml:"peer"`
	Places PlacesConfig `toml:"places"`
	// Metrics protects the status page of every server's metrics listener.
	Metrics MetricsConfig `toml:"metrics"`
	// HTTP configures every server's http listener (see http.go).
	HTTP HTTPConfig `toml:"http"`

	Locations LocationsConfig `toml:"locations"`

	Servers []Server `toml:"server"`
}

// ClientConfig holds the limits of client connections.
type ClientConfig struct {
	OneShot       bool     `toml:"one_shot"`         // close a connection after its first reply
	MaxLineBytes  int      `toml:"max_line_bytes"`   // a longer line closes the connection
	IdleTimeout   Duration `toml:"idle_timeout"`     // close a connection silent for this long
	WriteTimeout  Duration `toml:"write_timeout"`    // close a connection that does not read its replies
	MaxConns      int      `toml:"max_conns"`        // client connections per server
	MaxConnsPerIP int      `toml:"max_conns_per_ip"` // client connections per source IP; 0: no limit
	MaxPipeline   int      `toml:"max_pipeline"`     // commands read ahead of their replies
	// TLS, when set, makes every client listener speak TLS.
	TLS TLSFiles `toml:"tls"`
}

// TLSFiles names a certificate and key, and for peer links the CA; paths
// may hold {name}, replaced by the server's name.
type TLSFiles struct {
	CAFile   string `toml:"ca_file"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// On reports whether any file is set.
func (t TLSFiles) On() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// checkServerSide checks the files of a listener that presents a
// certificate and asks none of its callers (who) for one: cert_file and
// key_file both, no ca_file. section names the table, e.g. "client.tls".
func (t TLSFiles) checkServerSide(section, who string, fail func(key, format string, args ...any) error) error {
	switch {
	case t.CertFile == "":
		return fail(section+".cert_file", "missing: [%s] needs cert_file and key_file", section)
	case t.KeyFile == "":
		return fail(section+".key_file", "missing: [%s] needs cert_file and key_file", section)
	case t.CAFile != "":
		return fail(section+".ca_file", "not used: %s are not asked for certificates", who)
	}
	return nil
}

// Expand returns t with {name} replaced by name in every path.
func (t TLSFiles) Expand(name string) TLSFiles {
	r := func(p string) string { return strings.ReplaceAll(p, "{name}", name) }
	return TLSFiles{CAFile: r(t.CAFile), CertFile: r(t.CertFile), KeyFile: r(t.KeyFile)}
}

// MetricsConfig holds the settings shared by every metrics listener.
type MetricsConfig struct {
	// TokenFile holds the token that opens the status page and its data
	// (HTTP Basic password or Bearer token); empty: no token.
	TokenFile string `toml:"token_file"`
}

// PeerConfig holds the settings of links between servers.
type PeerConfig struct {
	QueueSize    int      `toml:"queue_size"`    // updates queued toward one neighbour before it is dropped and resynced
	DialTimeout  Duration `toml:"dial_timeout"`  // connect and handshake timeout
	RetryMax     Duration `toml:"retry_max"`     // longest wait between reconnection attempts
	Heartbeat    Duration `toml:"heartbeat"`     // idle links send a PING this often
	DeadAfter    Duration `toml:"dead_after"`    // a link silent this long is dropped
	WriteTimeout Duration `toml:"write_timeout"` // a neighbour that does not read for this long is dropped
	// TLS, when set, authenticates and encrypts every link with mutual TLS.
	TLS TLSFiles `toml:"tls"`
}

// PlacesConfig chooses and tunes the places provider.
type PlacesConfig struct {
	Provider   string   `toml:"provider"`    // "offline", "google" or "google-new"
	Endpoint   string   `toml:"endpoint"`    // full URL of the provider's endpoint; empty: the provider's default
	Timeout    Duration `toml:"timeout"`     // one upstream request
	CacheTTL   Duration `toml:"cache_ttl"`   // how long a network provider's answer is reused
	CacheSize  int      `toml:"cache_size"`  // answers kept at most
	RateLimit  float64  `toml:"rate_limit"`  // upstream requests per second; 0: unlimited
	RateBurst  int      `toml:"rate_burst"`  // upstream requests allowed at once above the rate
	CacheBytes int64    `toml:"cache_bytes"` // bytes of answers kept at most
}

// LocationsConfig bounds what the location table holds (SPEC §9).
type LocationsConfig struct {
	MaxClockSkew Duration `toml:"max_clock_skew"` // client times later than now plus this are refused; 0: no bound
	MaxClients   int      `toml:"max_clients"`    // locations one server holds at most
	TTL          Duration `toml:"ttl"`            // locations whose client time is older than now minus this are forgotten; 0: never
	TombstoneTTL Duration `toml:"tombstone_ttl"`  // deleted clients are remembered this long (so older updates cannot bring them back); 0 or absent: DefaultTombstoneTTL
}

// DefaultTombstoneTTL is how long a deleted client is remembered by
// default ([locations] tombstone_ttl): a week, longer than a partition is
// expected to last.
const DefaultTombstoneTTL = 168 * time.Hour

// Defaults of settings whose zero value means something else.
const (
	DefaultMaxClockSkew  = 24 * time.Hour
	DefaultGoogleRate    = 10 // places.rate_limit of the Google providers
	DefaultMaxCacheBytes = 64 << 20
)

// Server is one member of the herd.
type Server struct {
	Name      string   `toml:"name"`
	Addr      string   `toml:"addr"`      // client listener, host:port
	PeerAddr  string   `toml:"peer_addr"` // listener for other servers; empty: Addr
	Metrics   string   `toml:"metrics"`   // HTTP listener for /metrics and /healthz; empty: none
	HTTP      string   `toml:"http"`      // HTTP/JSON API listener (OwnTracks, OsmAnd, /v1); empty: none
	Neighbors []string `toml:"neighbors"` // as written; see Config.Links for the symmetric set
	// Advertise is the address neighbours dial (host:port), for a server
	// behind NAT or in a container; required when addr or peer_addr listens
	// on every interface (0.0.0.0, [::] or no host). Empty: peer_addr, else
	// addr.
	Advertise string `toml:"advertise"`
}

// Providers are the valid values of places.provider.
var Providers = []string{"offline", "google", "google-new"}

// Default returns the built-in herd of SPEC §1 with every setting at its default.
func Default() *Config {
	c := &Config{
		Servers: []Server{
			{Name: "Goloman", Addr: "127.0.0.1:12000", Metrics: "127.0.0.1:13000", Neighbors: []string{"Hands", "Holiday", "Wilkes"}},
			{Name: "Hands", Addr: "127.0.0.1:12001", Metrics: "127.0.0.1:13001", Neighbors: []string{"Goloman", "Wilkes"}},
			{Name: "Holiday", Addr: "127.0.0.1:12002", Metrics: "127.0.0.1:13002", Neighbors: []string{"Goloman", "Welsh", "Wilkes"}},
			{Name: "Welsh", Addr: "127.0.0.1:12003", Metrics: "127.0.0.1:13003", Neighbors: []string{"Holiday"}},
			{Name: "Wilkes", Addr: "127.0.0.1:12004", Metrics: "127.0.0.1:13004", Neighbors: []string{"Goloman", "Hands", "Holiday"}},
		},
	}
	c.LogDir = "logs"
	c.Locations.MaxClockSkew.D = DefaultMaxClockSkew
	c.setDefaults()
	return c
}

// setDefaults fills every unset setting (not the servers).
func (c *Config) setDefaults() {
	if c.DataSync == "" {
		c.DataSync = "always"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	cl := &c.Client
	setInt(&cl.MaxLineBytes, 4096)
	setDur(&cl.IdleTimeout, 5*time.Minute)
	setDur(&cl.WriteTimeout, 10*time.Second)
	setInt(&cl.MaxConns, 20000)
	setInt(&cl.MaxPipeline, 128)
	p := &c.Peer
	setInt(&p.QueueSize, 65536)
	setDur(&p.DialTimeout, 2*time.Second)
	setDur(&p.RetryMax, time.Second)
	setDur(&p.Heartbeat, 2*time.Second)
	setDur(&p.DeadAfter, 10*time.Second)
	setDur(&p.WriteTimeout, 5*time.Second)
	pl := &c.Places
	if pl.Provider == "" {
		pl.Provider = "offline"
	}
	setDur(&pl.Timeout, 5*time.Second)
	setDur(&pl.CacheTTL, 10*time.Minute)
	setInt(&pl.CacheSize, 10000)
	setInt(&pl.RateBurst, 20)
	if pl.CacheBytes == 0 {
		pl.CacheBytes = DefaultMaxCacheBytes
	}
	setInt(&c.Locations.MaxClients, 5_000_000)
	setDur(&c.Locations.TombstoneTTL, DefaultTombstoneTTL)
	setInt(&c.LogMaxMB, 100)
	setInt(&c.LogKeep, 5)
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDur(v *Duration, def time.Duration) {
	if v.D == 0 {
		v.D = def
	}
}

// Load reads and validates the TOML file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a config; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{File: name}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s:%d: %s", name, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: %s", name, unknownKeyError(und))
	}
	if !md.IsDefined("log_dir") {
		c.LogDir = "logs" // an explicit log_dir = "" turns log files off
	}
	if md.IsDefined("log_keep") && c.LogKeep == 0 {
		return nil, fmt.Errorf("%s: log_keep: 0 out of range: want at least 1 old file", name)
	}
	if !md.IsDefined("locations", "max_clock_skew") {
		c.Locations.MaxClockSkew.D = DefaultMaxClockSkew // an explicit "0" means no bound
	}
	if !md.IsDefined("places", "rate_limit") && strings.HasPrefix(c.Places.Provider, "google") {
		c.Places.RateLimit = DefaultGoogleRate // an explicit 0 means unlimited
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks names, addresses, links and values. Its errors name the
// file, the key and the problem.
func (c *Config) Validate() error {
	file := c.Source()
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", file, key, fmt.Sprintf(format, args...))
	}
	if len(c.Servers) == 0 {
		return fail("server", "no servers: add at least one [[server]] table")
	}
	names := map[string]bool{}
	addrs := map[string]string{}
	useAddr := func(key, addr, owner string) error {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fail(key, "bad address %q: want host:port", addr)
		}
		if port == "0" { // any free port: never a conflict
			return nil
		}
		if other, dup := addrs[addr]; dup {
			return fail(key, "address %s is already used by %s", addr, other)
		}
		addrs[addr] = owner
		return nil
	}
	for i, s := range c.Servers {
		key := fmt.Sprintf("server[%d]", i)
		if !protocol.ValidServerName([]byte(s.Name)) {
			return fail(key+".name", "bad server name %q: want 1–64 letters, digits, '-', '_' or '.'", s.Name)
		}
		if names[s.Name] {
			return fail(key+".name", "duplicate server name %q", s.Name)
		}
		names[s.Name] = true
		if s.Addr == "" {
			return fail(key+".addr", "missing for server %s", s.Name)
		}
		if err := useAddr(key+".addr", s.Addr, s.Name); err != nil {
			return err
		}
		if s.SeparatePeerListener() {
			if err := useAddr(key+".peer_addr", s.PeerAddr, s.Name+" (peer_addr)"); err != nil {
				return err
			}
		}

		if s.Metrics != "" {
			if err := useAddr(key+".metrics", s.Metrics, s.Name+" (metrics)"); err != nil {
				return err
			}
		}
		if s.HTTP != "" {
			if err := useAddr(key+".http", s.HTTP, s.Name+" (http)"); err != nil {
				return err
			}
		}
	}
	for i, s := range c.Servers {
		key := fmt.Sprintf("server[%d].neighbors", i)
		seen := map[string]bool{}
		for _, n := range s.Neighbors {
			switch {
			case n == s.Name:
				return fail(key, "server %s lists itself as a neighbour", s.Name)
			case !names[n]:
				return fail(key, "unknown server %q (servers are %s)", n, strings.Join(c.Names(), ", "))
			case seen[n]:
				return fail(key, "neighbour %q listed twice", n)
			}
			seen[n] = true
		}
	}
	for i, s := range c.Servers {
		if err := s.checkAdvertise(fmt.Sprintf("server[%d]", i), len(c.Links(s.Name)) > 0, fail); err != nil {
			return err
		}
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return fail("log_level", "unknown level %q: want \"debug\", \"info\", \"warn\" or \"error\"", c.LogLevel)
	}
	if c.DataSync != "always" && c.DataSync != "fast" {
		return fail("data_sync", "unknown mode %q: want \"always\" or \"fast\"", c.DataSync)
	}
	if !contains(Providers, c.Places.Provider) {
		return fail("places.provider", "unknown provider %q: want one of %s", c.Places.Provider, strings.Join(Providers, ", "))
	}
	checks := []struct {
		key  string
		bad  bool
		val  any    // the value, as written
		want string // the valid range
	}{
		{"client.max_conns_per_ip", c.Client.MaxConnsPerIP < 0, c.Client.MaxConnsPerIP, "0 (no limit) or more"},
		{"client.max_conns", c.Client.MaxConns < 1, c.Client.MaxConns, "at least 1"},
		{"client.max_pipeline", c.Client.MaxPipeline < 1, c.Client.MaxPipeline, "at least 1"},
		{"client.idle_timeout", c.Client.IdleTimeout.D < 0, c.Client.IdleTimeout.D, "0s or longer"},
		{"client.write_timeout", c.Client.WriteTimeout.D < 0, c.Client.WriteTimeout.D, "0s or longer"},
		{"peer.queue_size", c.Peer.QueueSize < 1, c.Peer.QueueSize, "at least 1"},
		{"peer.dial_timeout", c.Peer.DialTimeout.D < 0, c.Peer.DialTimeout.D, "0s or longer"},
		{"peer.retry_max", c.Peer.RetryMax.D < 0, c.Peer.RetryMax.D, "0s or longer"},
		{"peer.heartbeat", c.Peer.Heartbeat.D < 0, c.Peer.Heartbeat.D, "0s or longer"},
		{"peer.write_timeout", c.Peer.WriteTimeout.D < 0, c.Peer.WriteTimeout.D, "0s or longer"},
		{"places.timeout", c.Places.Timeout.D < 0, c.Places.Timeout.D, "0s or longer"},
		{"places.cache_ttl", c.Places.CacheTTL.D < 0, c.Places.CacheTTL.D, "0s or longer"},
		{"places.cache_size", c.Places.CacheSize < 0, c.Places.CacheSize, "0 or more"},
		{"places.rate_limit", c.Places.RateLimit < 0, c.Places.RateLimit, "0 (unlimited) or more requests per second"},
		{"places.rate_burst", c.Places.RateBurst < 1, c.Places.RateBurst, "at least 1"},
		{"places.cache_bytes", c.Places.CacheBytes < 0, c.Places.CacheBytes, "0 or more"},
		{"locations.max_clients", c.Locations.MaxClients < 1, c.Locations.MaxClients, "at least 1"},
		{"locations.tombstone_ttl", c.Locations.TombstoneTTL.D < 0, c.Locations.TombstoneTTL.D, "0s (the default, 168h) or longer"},
		{"log_max_mb", c.LogMaxMB < 1, c.LogMaxMB, "at least 1 (MiB)"},
		{"log_keep", c.LogKeep < 1, c.LogKeep, "at least 1 (old files)"},
	}
	if n := c.Client.MaxLineBytes; n < protocol.MinClientLineBytes || n > protocol.MaxClientLineBytes {
		return fail("client.max_line_bytes", "%d out of range: want %d to %d (the longest line whose update every neighbour accepts)",
			n, protocol.MinClientLineBytes, protocol.MaxClientLineBytes)
	}
	for _, ch := range checks {
		if ch.bad {
			return fail(ch.key, "%v out of range: want %s", ch.val, ch.want)
		}
	}
	if c.Peer.DeadAfter.D <= c.Peer.Heartbeat.D {
		return fail("peer.dead_after", "must be longer than peer.heartbeat")
	}
	if err := c.validateTLS(fail); err != nil {
		return err
	}
	if err := c.validateHTTP(fail); err != nil {
		return err
	}
	return nil
}

// validateTLS checks [peer.tls] and [client.tls].
func (c *Config) validateTLS(fail func(key, format string, args ...any) error) error {
	if t := c.Peer.TLS; t.On() {
		for _, f := range []struct{ key, v string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if f.v == "" {
				return fail("peer.tls."+f.key, "missing: [peer.tls] needs ca_file, cert_file and key_file (`herd certs` makes them)")
			}
		}
	}
	if !c.Client.TLS.On() {
		return nil
	}
	if err := c.Client.TLS.checkServerSide("client.tls", "clients", fail); err != nil {
		return err
	}
	for i, s := range c.Servers {
		if len(c.Links(s.Name)) > 0 && !s.SeparatePeerListener() {
			return fail(fmt.Sprintf("server[%d].peer_addr", i), "server %s needs its own peer_addr: with [client.tls] its addr speaks TLS to clients only", s.Name)
		}
	}
	return nil
}

// Unprotected returns an error naming the first listener of the named
// servers (all when names is empty) that would expose unauthenticated peer
// links beyond this machine: a server with neighbours listening on a
// non-loopback address while no credential is configured and insecure is
// not set. hasSecret says whether a shared secret was found (in the file or
// the environment).
func (c *Config) Unprotected(names []string, hasSecret bool) error {
	if c.Insecure || hasSecret || c.Peer.TLS.On() {
		return nil
	}
	for i, s := range c.Servers {
		if len(names) > 0 && !contains(names, s.Name) || len(c.Links(s.Name)) == 0 {
			continue
		}
		for _, l := range []struct{ key, addr string }{{"addr", s.Addr}, {"peer_addr", s.PeerAddr}} {
			if l.addr == "" || IsLoopback(l.addr) {
				continue
			}
			return fmt.Errorf("%s: server[%d].%s: %s listens on %s, which is not a loopback address, and peer links have no credential: "+
				"set up mutual TLS ([peer.tls], see `herd certs`) or a shared secret (peer_secret_file or HERD_PEER_SECRET, see `herd secret`), "+
				"or put insecure = true at the top of the config to accept unauthenticated peers from anywhere",
				c.Source(), i, l.key, s.Name, l.addr)
		}
	}
	return nil
}

// IsLoopback reports whether the host of addr (host:port) is a loopback
// address or "localhost". An empty host (every interface) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// Level returns log_level as a slog level.
func (c *Config) Level() slog.Level { return logLevels[c.LogLevel] }

// Source names the config in messages: its file, or "the built-in
// config".
func (c *Config) Source() string {
	if c.File == "" {
		return "the built-in config"
	}
	return c.File
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Names returns the server names in config order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Name
	}
	return out
}

// Server returns the server called name.
func (c *Config) Server(name string) (Server, bool) {
	for _, s := range c.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return Server{}, false
}

// Links returns the servers name talks with, sorted: those it lists and
// those that list it (links are symmetric).
func (c *Config) Links(name string) []string {
	set := map[string]bool{}
	for _, s := range c.Servers {
		if s.Name == name {
			for _, n := range s.Neighbors {
				set[n] = true
			}
			continue
		}
		if contains(s.Neighbors, name) {
			set[s.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SeparatePeerListener reports whether s takes links on a listener of its
// own: a peer_addr other than addr, or any port-0 peer_addr (a free port
// of its own, even when addr says the same).
func (s Server) SeparatePeerListener() bool {
	if s.PeerAddr == "" {
		return false
	}
	_, port, _ := net.SplitHostPort(s.PeerAddr)
	return s.PeerAddr != s.Addr || port == "0"
}

// checkAdvertise checks advertise's form and, for a server with links,
// requires it when a listener that neighbours dial is on every interface
// (dialling 0.0.0.0 reaches only the same machine).
func (s Server) checkAdvertise(key string, linked bool, fail func(key, format string, args ...any) error) error {
	if s.Advertise != "" {
		host, port, err := net.SplitHostPort(s.Advertise)
		switch {
		case err != nil:
			return fail(key+".advertise", "bad address %q: want host:port", s.Advertise)
		case unspecified(host):
			return fail(key+".advertise", "%s is not an address neighbours can dial: give this host's address as they reach it", s.Advertise)
		case port == "0":
			return fail(key+".advertise", "%s: give the port neighbours dial, not 0", s.Advertise)
		}
		return nil
	}
	if !linked {
		return nil
	}
	for _, l := range []struct{ key, addr string }{{"addr", s.Addr}, {"peer_addr", s.PeerAddr}} {
		if host, _, err := net.SplitHostPort(l.addr); err == nil && unspecified(host) {
			return fail(key+"."+l.key, "%s listens on every interface: neighbours cannot dial that; add advertise = \"HOST:PORT\" (the address they dial) to this [[server]]", l.addr)
		}
	}
	return nil
}

// unspecified reports whether host means every interface.
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// PeerAddrOf returns where other servers connect to s.
func (s Server) PeerAddrOf() string {
	if s.Advertise != "" {
		return s.Advertise
	}
	if s.PeerAddr != "" {
		return s.PeerAddr
	}
	return s.Addr
}

// Duration is a time.Duration written in TOML as a string such as "5s".
type Duration struct{ D time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: want e.g. \"500ms\", \"10s\", \"5m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("bad duration %q: must not be negative", b)
	}
	d.D = v
	return nil
}

// MarshalText prints d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.D.String()), nil }
