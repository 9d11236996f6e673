package config

import (
	"strings"
	"testing"
)

func TestEditDistance(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want int
	}{
		"same":         {"neighbors", "neighbors", 0},
		"one deleted":  {"neighbours", "neighbors", 1},
		"swap":         {"adrd", "addr", 2},
		"empty":        {"", "addr", 4},
		"substitution": {"log_dir", "log_dur", 1},
		"unrelated":    {"colour", "addr", 5},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Fatalf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := editDistance(tt.b, tt.a); got != tt.want {
				t.Fatalf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestUnknownKeySuggestsClosest(t *testing.T) {
	const server = "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\n"
	tests := map[string]struct {
		toml string
		want string // substring of the error
		not  string // must not be in the error
	}{
		"server key":      {server + "neighbours = []\n", "unknown key server.neighbours (did you mean `neighbors`?)", ""},
		"top-level key":   {"data_dri = \"d\"\n" + server, "unknown key data_dri (did you mean `data_dir`?)", ""},
		"nested table":    {"[client]\nmax_line_byte = 100\n" + server, "unknown key client.max_line_byte (did you mean `max_line_bytes`?)", ""},
		"table name":      {"[place]\nprovider = \"offline\"\n" + server, "unknown key place (did you mean `places`?)", "place.provider"},
		"deeper table":    {"[peer.tls]\ncafile = \"x\"\n" + server, "unknown key peer.tls.cafile (did you mean `ca_file`?)", ""},
		"nothing close":   {"colour = 1\n" + server, "unknown key colour", "did you mean"},
		"two keys":        {server + "neighbours = []\nadr = \"x\"\n", "unknown keys server.neighbours (did you mean `neighbors`?), server.adr (did you mean `addr`?)", ""},
		"case is ignored": {server + "Neighbours = []\n", "(did you mean `neighbors`?)", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("h.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || (tt.not != "" && strings.Contains(err.Error(), tt.not)) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRangeErrorsGiveTheRange(t *testing.T) {
	const server = "[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\n"
	tests := map[string]struct {
		toml string
		want string
	}{
		"max_conns_per_ip": {"[client]\nmax_conns_per_ip = -1\n", "client.max_conns_per_ip: -1 out of range: want 0 (no limit) or more"},
		"max_pipeline":     {"[client]\nmax_pipeline = -3\n", "client.max_pipeline: -3 out of range: want at least 1"},
		"queue_size":       {"[peer]\nqueue_size = -1\n", "peer.queue_size: -1 out of range: want at least 1"},
		"rate_limit":       {"[places]\nrate_limit = -0.5\n", "places.rate_limit: -0.5 out of range: want 0 (unlimited) or more requests per second"},
		"max_clients":      {"[locations]\nmax_clients = -5\n", "locations.max_clients: -5 out of range: want at least 1"},
		"log_max_mb":       {"log_max_mb = -1\n", "log_max_mb: -1 out of range: want at least 1 (MiB)"},
		"max_line_bytes":   {"[client]\nmax_line_bytes = 10\n", "client.max_line_bytes: 10 out of range: want 64 to"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("h.toml", []byte(tt.toml+server))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
