package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An http listener beyond loopback without a tokens file stops herd at
// start with exit 2, naming the listener and the fix.
func TestHTTPProtectedMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herd.toml")
	cfg := `
log_dir = ""
[[server]]
name = "Goloman"
addr = "127.0.0.1:0"
http = "0.0.0.0:0"
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"up", "-config", path}, {"serve", "Goloman", "-config", path}} {
		code, _, stderr := runMain(t, "", args...)
		if code != exitUsage {
			t.Fatalf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr)
		}
		for _, want := range []string{"server[0].http", "0.0.0.0:0", "not a loopback address", "tokens_file"} {
			if !strings.Contains(stderr, want) {
				t.Fatalf("%v: stderr %q does not say %q", args, stderr, want)
			}
		}
	}
}
