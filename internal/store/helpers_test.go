package store

import (
	"bytes"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// line returns a realistic AT line (about 90 bytes) for client c at time t.
func line(c, t uint64) string {
	return fmt.Sprintf("AT Goloman +0.263873386 client%07d.cs.ucla.edu +34.068930-118.445127 %d.959498503", c, 1621464827+t)
}

// clientOf returns the client id of a line made by line.
func clientOf(l string) string { return strings.Fields(l)[3] }

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a store in dir and fails the test on error.
func open(t testing.TB, o Options) (*Store, *State) {
	t.Helper()
	s, st, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, st
}

// closeStore closes s and fails the test on error.
func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// model is a caller's table: the latest entry per client, kept in step with
// the store under one lock, as a server does.
type model struct {
	mu  sync.Mutex
	seq uint64
	m   map[string]Entry
}

func newModel(seq uint64) *model { return &model{seq: seq, m: make(map[string]Entry)} }

// set records a new location of client c and appends it to s.
func (m *model) set(s *Store, c, t uint64, done chan<- error) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	e := Entry{Seq: m.seq, Line: line(c, t)}
	m.m[clientOf(e.Line)] = e
	s.Append(e.Seq, e.Line, done)
	return e.Seq
}

// all iterates over a copy of the table, like location.Table.Range.
func (m *model) all() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		m.mu.Lock()
		es := slices.Collect(maps.Values(m.m))
		m.mu.Unlock()
		for _, e := range es {
			if !yield(e) {
				return
			}
		}
	}
}

// merge keeps the entry with the highest seq per client, which is the
// newest in these tests.
func merge(es []Entry) map[string]Entry {
	m := make(map[string]Entry)
	for _, e := range es {
		c := clientOf(e.Line)
		if old, ok := m[c]; !ok || e.Seq > old.Seq {
			m[c] = e
		}
	}
	return m
}

// files returns the names of the files in dir.
func files(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// recordOffsets returns the offset of every record of a log segment or
// snapshot, and the file's size.
func recordOffsets(t testing.TB, path string) ([]int64, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if _, err := f.Seek(headerSize, 0); err != nil {
		t.Fatal(err)
	}
	r := newReader(f, headerSize)
	var offs []int64
	for {
		off := r.off
		if _, err := r.next(); err != nil {
			return offs, fi.Size()
		}
		offs = append(offs, off)
	}
}

// dirSize returns the total size of the files in dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range files(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
