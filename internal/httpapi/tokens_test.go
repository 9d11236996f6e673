package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		p      Pattern
		client string
		want   bool
	}{
		{"*", "anything", true},
		{"*", "", true},
		{"alice/*", "alice/phone", true},
		{"alice/*", "alice/", true},
		{"alice/*", "alice", false},
		{"alice/*", "bob/phone", false},
		{"alice/phone", "alice/phone", true},
		{"alice/phone", "alice/phone2", false},
		{"kiwi.cs.ucla.edu", "kiwi.cs.ucla.edu", true},
	}
	for _, tt := range tests {
		if got := tt.p.Match(tt.client); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.p, tt.client, got, tt.want)
		}
	}
}

func TestParseTokens(t *testing.T) {
	sum := sha256.Sum256([]byte("bob-secret-token-0123"))
	hexSum := hex.EncodeToString(sum[:])
	tests := []struct {
		name, file string
		wantErr    string // "" for success
		grants     int
	}{
		{"one clear", `[[token]]
token = "alice-secret-token-0123"
write = ["alice/*"]
read = ["*"]`, "", 1},
		{"clear and hashed", `[[token]]
token = "alice-secret-token-0123"
write = ["alice/*"]
[[token]]
name = "bob"
token_sha256 = "` + hexSum + `"
read = ["family/*", "bob/phone"]`, "", 2},
		{"empty file", ``, "", 0},
		{"short token", "[[token]]\ntoken = \"short\"", "at least 16", 0},
		{"both", "[[token]]\ntoken = \"alice-secret-token-0123\"\ntoken_sha256 = \"" + hexSum + "\"", "not both", 0},
		{"neither", "[[token]]\nwrite = [\"*\"]", "missing token", 0},
		{"bad hex", "[[token]]\ntoken_sha256 = \"abc\"", "64 hex digits", 0},
		{"star inside", "[[token]]\ntoken = \"alice-secret-token-0123\"\nwrite = [\"a*b\"]", "may only end", 0},
		{"empty pattern", "[[token]]\ntoken = \"alice-secret-token-0123\"\nread = [\"\"]", "empty pattern", 0},
		{"unknown key", "[[token]]\ntoken = \"alice-secret-token-0123\"\nwrites = [\"*\"]", "unknown key", 0},
		{"duplicate", "[[token]]\ntoken = \"alice-secret-token-0123\"\n[[token]]\ntoken_sha256 = \"" + func() string {
			s := sha256.Sum256([]byte("alice-secret-token-0123"))
			return hex.EncodeToString(s[:])
		}() + "\"", "same token", 0},
		{"bad toml", "[[token]\n", "tokens.toml:", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grants, sums, err := ParseTokens("tokens.toml", []byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(grants) != tt.grants || len(sums) != tt.grants {
				t.Fatalf("got %d grants, %d sums, want %d", len(grants), len(sums), tt.grants)
			}
		})
	}
}

func TestTokensCheckAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.toml")
	sum := sha256.Sum256([]byte("bob-secret-token-0123"))
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`[[token]]
name = "alice"
token = "alice-secret-token-0123"
write = ["alice/*"]
read = ["*"]
[[token]]
token_sha256 = "` + hex.EncodeToString(sum[:]) + `"
write = ["bob/phone"]
read = ["bob/*"]
`)
	ts, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := ts.Check("alice-secret-token-0123")
	if !ok || g.Name != "alice" || !g.CanWrite("alice/phone") || g.CanWrite("bob/phone") || !g.CanRead("bob/phone") {
		t.Fatalf("alice's grant = %+v, %v", g, ok)
	}
	g, ok = ts.Check("bob-secret-token-0123")
	if !ok || g.Name != "token[1]" || !g.CanWrite("bob/phone") || g.CanWrite("bob/tablet") || g.CanRead("alice/phone") {
		t.Fatalf("bob's grant = %+v, %v", g, ok)
	}
	if _, ok := ts.Check("alice-secret-token-012"); ok {
		t.Fatal("a prefix of a token was accepted")
	}
	if _, ok := ts.Check(""); ok {
		t.Fatal("the empty token was accepted")
	}
	// A bad file is refused and the tokens in use stay.
	write("[[token]]\ntoken = \"short\"\n")
	if err := ts.Reload(); err == nil {
		t.Fatal("Reload accepted a bad file")
	}
	if _, ok := ts.Check("alice-secret-token-0123"); !ok {
		t.Fatal("a failed Reload dropped the tokens in use")
	}
	// A good file replaces them.
	write("[[token]]\ntoken = \"carol-secret-token-0123\"\nread = [\"*\"]\n")
	if err := ts.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.Check("alice-secret-token-0123"); ok {
		t.Fatal("a revoked token still works after Reload")
	}
	if g, ok := ts.Check("carol-secret-token-0123"); !ok || !g.CanRead("x") || g.CanWrite("x") {
		t.Fatalf("carol's grant = %+v, %v", g, ok)
	}
}

func TestExactReads(t *testing.T) {
	g := Grant{Read: []Pattern{"a/b", "c/d"}}
	if ids, ok := g.ExactReads(); !ok || len(ids) != 2 {
		t.Fatalf("ExactReads = %v, %v", ids, ok)
	}
	g.Read = append(g.Read, "e/*")
	if _, ok := g.ExactReads(); ok {
		t.Fatal("ExactReads with a prefix pattern")
	}
	if _, ok := AllowAll.ExactReads(); ok {
		t.Fatal("ExactReads of AllowAll")
	}
}

func TestTrackerID(t *testing.T) {
	for in, want := range map[string]string{
		"alice/phone":      "AP",
		"bob/phone":        "BP",
		"alice/":           "AL",
		"/phone":           "/P",
		"kiwi.cs.ucla.edu": "KI",
		"élodie/téléphone": "ÉT",
		"x":                "X",
		"family/ana/ipad":  "FI",
	} {
		if got := TrackerID(in); got != want {
			t.Errorf("TrackerID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOsmandTime(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"1621464827", "1621464827", ""},
		{"1621464827.959498503", "1621464827.959498503", ""},
		{"1621464827959", "1621464827.959", ""},
		{"000000000001", "0.001", ""},
		{"2021-05-19T22:53:47Z", "1621464827", ""},
		{"2021-05-19T22:53:47.959Z", "1621464827.959000000", ""},
		{"2021-05-20T00:53:47.5+02:00", "1621464827.500000000", ""},
		{"1969-12-31T23:59:59Z", "", "bad timestamp"},
		{"yesterday", "", "bad timestamp"},
		{"2021-05-19 22:53:47", "", "bad timestamp"},
	}
	for _, tt := range tests {
		got, err := osmandTime(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("osmandTime(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("osmandTime(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
