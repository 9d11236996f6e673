package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// MinTokenBytes is the shortest token a tokens file may hold in clear.
const MinTokenBytes = 16

// Pattern is one client-id pattern of a token: an exact client id, or a
// prefix when it ends in "*" ("alice/*"; "*" alone matches every id).
type Pattern string

// Match reports whether client matches p.
func (p Pattern) Match(client string) bool {
	if prefix, ok := strings.CutSuffix(string(p), "*"); ok {
		return strings.HasPrefix(client, prefix)
	}
	return string(p) == client
}

// Grant is what one token allows: the clients it may report (write) and
// those whose locations it may read. The zero Grant allows nothing;
// AllowAll allows everything.
type Grant struct {
	Name  string // the token's name in the file, for logs; never the token
	Write []Pattern
	Read  []Pattern
	all   bool
}

// AllowAll is the grant of every request when no tokens file is
// configured (a loopback-only listener).
var AllowAll = Grant{Name: "anyone", all: true}

// CanWrite reports whether the grant may report or delete client.
func (g Grant) CanWrite(client string) bool { return g.all || matchAny(g.Write, client) }

// CanRead reports whether the grant may read client's location.
func (g Grant) CanRead(client string) bool { return g.all || matchAny(g.Read, client) }

// ExactReads returns the client ids of the read patterns when none of them
// is a prefix pattern, so a reader can look them up instead of scanning.
func (g Grant) ExactReads() ([]string, bool) {
	if g.all {
		return nil, false
	}
	out := make([]string, 0, len(g.Read))
	for _, p := range g.Read {
		if strings.HasSuffix(string(p), "*") {
			return nil, false
		}
		out = append(out, string(p))
	}
	return out, true
}

func matchAny(ps []Pattern, client string) bool {
	for _, p := range ps {
		if p.Match(client) {
			return true
		}
	}
	return false
}

// tokenFile is the TOML layout of a tokens file.
type tokenFile struct {
	Token []struct {
		Name        string   `toml:"name"`
		Token       string   `toml:"token"`
		TokenSHA256 string   `toml:"token_sha256"`
		Write       []string `toml:"write"`
		Read        []string `toml:"read"`
	} `toml:"token"`
}

// entry is one token as kept in memory: only its SHA-256.
type entry struct {
	sum   [sha256.Size]byte
	grant Grant
}

// ParseTokens parses a tokens file (name is used in errors):
//
//	[[token]]
//	name  = "alice's phone"   # optional, for logs
//	token = "…"               # or token_sha256 = "<64 hex digits>"
//	write = ["alice/*"]
//	read  = ["*"]
//
// Every token needs token or token_sha256 (not both); patterns are client
// ids, with an optional "*" at the end only.
func ParseTokens(name string, data []byte) ([]Grant, [][sha256.Size]byte, error) {
	var f tokenFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, nil, fmt.Errorf("%s:%d: %s", name, perr.Position.Line, perr.Message)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, nil, fmt.Errorf("%s: unknown key %s", name, strings.Join(keys, ", "))
	}
	grants := make([]Grant, 0, len(f.Token))
	sums := make([][sha256.Size]byte, 0, len(f.Token))
	seen := map[[sha256.Size]byte]int{}
	for i, t := range f.Token {
		key := fmt.Sprintf("%s: token[%d]", name, i)
		var sum [sha256.Size]byte
		switch {
		case t.Token != "" && t.TokenSHA256 != "":
			return nil, nil, fmt.Errorf("%s: set token or token_sha256, not both", key)
		case t.Token != "":
			if len(t.Token) < MinTokenBytes {
				return nil, nil, fmt.Errorf("%s.token: %d bytes: a token needs at least %d (e.g. `openssl rand -hex 24`)", key, len(t.Token), MinTokenBytes)
			}
			sum = sha256.Sum256([]byte(t.Token))
		case t.TokenSHA256 != "":
			b, err := hex.DecodeString(t.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, nil, fmt.Errorf("%s.token_sha256: want 64 hex digits (`printf %%s TOKEN | sha256sum`)", key)
			}
			copy(sum[:], b)
		default:
			return nil, nil, fmt.Errorf("%s: missing token or token_sha256", key)
		}
		if j, dup := seen[sum]; dup {
			return nil, nil, fmt.Errorf("%s: the same token as token[%d]", key, j)
		}
		seen[sum] = i
		g := Grant{Name: t.Name}
		if g.Name == "" {
			g.Name = fmt.Sprintf("token[%d]", i)
		}
		if g.Write, err = patterns(key+".write", t.Write); err != nil {
			return nil, nil, err
		}
		if g.Read, err = patterns(key+".read", t.Read); err != nil {
			return nil, nil, err
		}
		grants = append(grants, g)
		sums = append(sums, sum)
	}
	return grants, sums, nil
}

func patterns(key string, in []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(in))
	for _, s := range in {
		if s == "" {
			return nil, fmt.Errorf("%s: empty pattern", key)
		}
		if i := strings.IndexByte(s, '*'); i >= 0 && i != len(s)-1 {
			return nil, fmt.Errorf("%s: pattern %q: \"*\" may only end a pattern", key, s)
		}
		out = append(out, Pattern(s))
	}
	return out, nil
}

// Tokens is the set of tokens of a tokens file, safe for concurrent use.
// Reload re-reads the file (for SIGHUP); a file with an error is refused
// and the tokens in use stay.
type Tokens struct {
	path string

	mu      sync.RWMutex
	entries []entry // guarded by mu
}

// LoadTokens reads the tokens file at path.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// NewTokens returns a token set holding the given tokens in clear, each
// with its grant (tests, embedding).
func NewTokens(tokens map[string]Grant) *Tokens {
	t := &Tokens{}
	for tok, g := range tokens {
		t.entries = append(t.entries, entry{sum: sha256.Sum256([]byte(tok)), grant: g})
	}
	return t
}

// Reload re-reads the tokens file. On an error the tokens in use are kept.
func (t *Tokens) Reload() error {
	if t.path == "" {
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("tokens_file: %w", err)
	}
	grants, sums, err := ParseTokens(t.path, data)
	if err != nil {
		return err
	}
	es := make([]entry, len(grants))
	for i := range grants {
		es[i] = entry{sum: sums[i], grant: grants[i]}
	}
	t.mu.Lock()
	t.entries = es
	t.mu.Unlock()
	return nil
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// Check returns the grant of token. It compares the token's SHA-256 with
// every stored one in constant time, so neither the answer's timing nor
// the file reveals a token.
func (t *Tokens) Check(token string) (Grant, bool) {
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Grant{}, false
	}
	return t.entries[found].grant, true
}
