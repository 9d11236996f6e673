package config

import (
	"strings"
	"testing"
)

func TestHTTPConfig(t *testing.T) {
	base := `
[[server]]
name = "A"
addr = "127.0.0.1:12000"
neighbors = ["B"]
%s
[[server]]
name = "B"
addr = "127.0.0.1:12001"
%s
`
	tests := []struct {
		name, a, b, extra string
		wantErr           string
	}{
		{"loopback without tokens", `http = "127.0.0.1:14000"`, `http = "localhost:14001"`, "", ""},
		{"port 0 twice", `http = "127.0.0.1:0"`, `http = "127.0.0.1:0"`, "", ""},
		{"duplicate", `http = "127.0.0.1:14000"`, `http = "127.0.0.1:14000"`, "", "server[1].http: address 127.0.0.1:14000 is already used by A (http)"},
		{"clash with addr", `http = "127.0.0.1:12001"`, ``, "", "server[1].addr: address 127.0.0.1:12001 is already used by A (http)"},
		{"clash with metrics", `metrics = "127.0.0.1:13000"
http = "127.0.0.1:13000"`, ``, "", "server[0].http: address 127.0.0.1:13000 is already used by A (metrics)"},
		{"bad address", `http = "14000"`, ``, "", "server[0].http: bad address"},
		{"public without tokens", `http = "0.0.0.0:14000"`, ``, "",
			"server[0].http: A listens on 0.0.0.0:14000, which is not a loopback address, and [http] has no tokens_file"},
		{"all interfaces without tokens", ``, `http = ":14001"`, "", "server[1].http: B listens on :14001"},
		{"public with tokens", `http = "0.0.0.0:14000"`, ``, "[http]\ntokens_file = \"tokens.toml\"\n", ""},
		{"tls pair", `http = "127.0.0.1:14000"`, ``, "[http.tls]\ncert_file = \"certs/{name}.crt\"\nkey_file = \"certs/{name}.key\"\n", ""},
		{"tls without key", `http = "127.0.0.1:14000"`, ``, "[http.tls]\ncert_file = \"c.crt\"\n", "http.tls.key_file: missing"},
		{"tls with ca", `http = "127.0.0.1:14000"`, ``, "[http.tls]\ncert_file = \"c.crt\"\nkey_file = \"c.key\"\nca_file = \"ca.crt\"\n", "http.tls.ca_file: not used"},
		{"negative body", ``, ``, "[http]\nmax_body_bytes = -1\n", "http.max_body_bytes: -1 out of range"},
		{"unknown key", ``, ``, "[http]\ntoken_file = \"x\"\n", "unknown key http.token_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.extra + strings.Replace(strings.Replace(base, "%s", tt.a, 1), "%s", tt.b, 1)
			c, err := Parse("herd.toml", []byte(src))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q (config %+v)", err, tt.wantErr, c)
			}
			if !strings.HasPrefix(err.Error(), "herd.toml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	if got := (HTTPConfig{}).BodyLimit(); got != DefaultMaxBodyBytes {
		t.Fatalf("default body limit %d", got)
	}
	if got := (HTTPConfig{MaxBodyBytes: 4096}).BodyLimit(); got != 4096 {
		t.Fatalf("body limit %d", got)
	}
}
