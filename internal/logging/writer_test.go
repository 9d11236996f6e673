package logging

import (
	"bytes"
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
