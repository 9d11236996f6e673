package logging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dirSize returns the bytes and number of files in dir.
func dirSize(t *testing.T, dir string) (int64, int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n, len(ents)
}

// TestRotationBoundsFlood: a flood of long junk lines, logged as a server
// logs them (input, the reason, the "?" reply), keeps the log directory
// under (log_keep+1) × log_max_mb.
func TestRotationBoundsFlood(t *testing.T) {
	dir := t.TempDir()
	const maxMB, keep = 1, 2
	f, err := OpenFile(dir, "Goloman", Rotation{MaxMB: maxMB, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(strings.Repeat("junk ", 800)) // 4000 bytes
	reply := append([]byte("? "), junk...)
	const lines = 12000 // far more than (keep+1) MiB of records
	for range lines {
		f.ClientLine("client input", "127.0.0.1:5", junk)
		f.Logger.Info("invalid command", "client", "127.0.0.1:5", "err", "unknown command")
		f.ClientLine("client output", "127.0.0.1:5", reply)
	}
	f.Close()
	limit := int64(keep+1) * maxMB << 20
	// Old files are removed by lumberjack's own goroutine after a rotation.
	waitFor(t, 5*time.Second, "old log files removed", func() bool {
		n, files := dirSize(t, dir)
		return n <= limit && files <= keep+1
	})
	n, files := dirSize(t, dir)
	if files < 2 {
		t.Fatalf("no rotation happened: %d file(s), %d bytes", files, n)
	}
	t.Logf("%d files, %d bytes (limit %d)", files, n, limit)
	// Every file is whole JSON records.
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range paths {
		data, _ := os.ReadFile(p)
		for i, rec := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if !json.Valid([]byte(rec)) {
				t.Fatalf("%s record %d is not JSON: %.80q", p, i, rec)
			}
		}
	}
}

// TestClientLineLoggedOnce: a long line is cut past MaxLoggedLine with the
// count of bytes cut, and its "? " reply does not log it again.
func TestClientLineLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, "Goloman", Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 1000) + "tail" // 2004 bytes; the cut falls inside a character
	f.ClientLine("client input", "c", []byte(long))
	f.ClientLine("client output", "c", []byte("? "+long))
	f.ClientLine("client output", "c", []byte("AT Goloman +0.1 k +1+1 1"))
	f.Close()
	data, _ := os.ReadFile(filepath.Join(dir, "Goloman.log"))
	recs := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(recs) != 3 {
		t.Fatalf("log: %q", data)
	}
	var in, out, at map[string]any
	for i, m := range []*map[string]any{&in, &out, &at} {
		if err := json.Unmarshal([]byte(recs[i]), m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	line := in["line"].(string)
	if len(line) != MaxLoggedLine || !strings.HasPrefix(long, line) || in["truncated"] != float64(len(long)-MaxLoggedLine) {
		t.Fatalf("input record: line of %d bytes, truncated=%v", len(line), in["truncated"])
	}
	if out["reply"] != "?" || out["echo"] != float64(len(long)) || out["truncated"] != nil {
		t.Fatalf("output record %v", out)
	}
	if at["reply"] != "AT Goloman +0.1 k +1+1 1" || at["truncated"] != nil || at["echo"] != nil {
		t.Fatalf("AT record %v", at)
	}
	if len(data) > 2*MaxLoggedLine+600 {
		t.Fatalf("%d bytes logged for one 2 KB line", len(data))
	}
}

func TestWriteChunks(t *testing.T) {
	var got []int
	w := writerFunc(func(p []byte) (int, error) { got = append(got, len(p)); return len(p), nil })
	rec := strings.Repeat("x", 1000) + "\n"
	buf := []byte(strings.Repeat(rec, 600)) // 600600 bytes
	writeChunks(w, buf)
	total := 0
	for _, n := range got {
		if n > chunkBytes || n%len(rec) != 0 {
			t.Fatalf("write of %d bytes: not whole records within %d", n, chunkBytes)
		}
		total += n
	}
	if total != len(buf) {
		t.Fatalf("wrote %d of %d bytes", total, len(buf))
	}
	got = nil
	huge := []byte(strings.Repeat("y", chunkBytes+10) + "\nz\n")
	writeChunks(w, huge)
	if len(got) != 2 || got[0] != chunkBytes+11 {
		t.Fatalf("an over-long record was split: %v", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
