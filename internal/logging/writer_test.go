package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// blockingWriter holds every Write until released.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *blockingWriter) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWriterKeepsOrderAndFlushesOnClose(t *testing.T) {
	out := &blockingWriter{release: make(chan struct{})}
	close(out.release)
	w := NewWriter(out)
	for i := range 1000 {
		w.Write([]byte(strings.Repeat("x", i%7) + "\n"))
	}
	w.Close()
	if got := strings.Count(out.String(), "\n"); got != 1000 {
		t.Fatalf("%d records written, want 1000", got)
	}
}

// TestWriterNeverBlocks: with the disk stuck, writes still return at once,
// and past MaxBuffered records are dropped and counted, then reported.
func TestWriterNeverBlocks(t *testing.T) {
	out := &blockingWriter{release: make(chan struct{})}
	w := NewWriter(out)
	rec := bytes.Repeat([]byte("y"), 64<<10)
	for range 2 * MaxBuffered / len(rec) { // would block forever if Write waited for the disk
		w.Write(rec)
	}
	if w.Dropped.Load() == 0 {
		t.Fatal("nothing was dropped although the writer could not keep up")
	}
	close(out.release)
	w.Close()
	if !strings.Contains(out.String(), "log records dropped") {
		t.Fatal("the drop was not reported in the log")
	}
}

// TestClientLineMatchesSlog: the fast path writes what the slog JSON
// handler writes, key for key.
func TestClientLineMatchesSlog(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, "Goloman", Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	line := "IAMAT k\u00e9\x01\"\\ \xff \u2028<&> +1+1 1\t"
	f.ClientLine("client input", "127.0.0.1:5", []byte(line))
	f.Logger.Info("client input", "client", "127.0.0.1:5", "line", line)
	f.Close()
	data, _ := os.ReadFile(filepath.Join(dir, "Goloman.log"))
	recs := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(recs) != 2 {
		t.Fatalf("log: %q", data)
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(recs[0]), &a); err != nil {
		t.Fatalf("fast record is not JSON: %v\n%s", err, recs[0])
	}
	json.Unmarshal([]byte(recs[1]), &b)
	delete(a, "time")
	delete(b, "time")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("fast record %v\nslog record %v", a, b)
	}
	if strings.SplitN(recs[0], `"msg"`, 2)[1] != strings.SplitN(recs[1], `"msg"`, 2)[1] {
		t.Fatalf("bytes differ after the time:\n%s\n%s", recs[0], recs[1])
	}
}

// FuzzAppendJSON: a string is escaped as the slog JSON handler escapes
// it, from a string and from bytes alike.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "IAMAT kiwi +1+1 1", "k\u00e9\x01\"\\ \xff \u2028\u2029<&>\t\r\n\x7f", "\xe2\x80", "a\xc0\xafb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var out bytes.Buffer
		drop := func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		}
		slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{ReplaceAttr: drop})).Info("", "k", s)
		want := strings.TrimSuffix(strings.TrimPrefix(out.String(), `{"k":`), "}\n")
		if got := string(appendJSON(nil, s)); got != want {
			t.Fatalf("from a string: %s, slog: %s", got, want)
		}
		if got := string(appendJSON(nil, []byte(s))); got != want {
			t.Fatalf("from bytes: %s, slog: %s", got, want)
		}
	})
}
