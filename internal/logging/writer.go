// Package logging gives each server its structured log: a log/slog JSON
// handler over a file writer that never blocks the caller on disk I/O. The
// file is rotated by size (gopkg.in/natefinch/lumberjack.v2), keeping a
// bounded number of old files.
package logging

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Writer buffers log records in memory and writes them to an underlying
// writer from its own goroutine, at least every FlushEvery. When the
// underlying writer falls MaxBuffered bytes behind, new records are dropped
// and counted rather than blocking the server; a note of how many were
// dropped is written once the writer catches up.
type Writer struct {
	out io.Writer

	mu      sync.Mutex
	buf     []byte // guarded by mu: records not yet written
	closed  bool   // guarded by mu
	dropped int64  // guarded by mu: records dropped since the last note

	kick    chan struct{} // asks the flusher to write now
	done    chan struct{} // closed when the flusher has exited
	Dropped atomic.Int64  // records dropped since start
}

// Tuning of Writer.
const (
	FlushEvery  = 100 * time.Millisecond
	kickAt      = 256 << 10
	MaxBuffered = 16 << 20
	// chunkBytes bounds one write to the underlying writer, cut at a
	// record boundary, so that a rotating file can start a new file
	// between records and never refuses a write as larger than a file.
	chunkBytes = 256 << 10
)

// NewWriter starts a Writer over out.
func NewWriter(out io.Writer) *Writer {
	w := &Writer{out: out, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// Write appends one record; it never waits for disk.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.buf)+len(p) > MaxBuffered {
		w.dropped++
		w.mu.Unlock()
		w.Dropped.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= kickAt
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-t.C:
		case <-w.kick:
		}
		w.mu.Lock()
		buf, dropped, closed := w.buf, w.dropped, w.closed
		w.buf, w.dropped = spare[:0], 0
		w.mu.Unlock()
		if dropped > 0 {
			buf = append(buf, `{"level":"WARN","msg":"log records dropped: the log file could not keep up","dropped":`...)
			buf = append(buf, []byte(itoa(dropped))...)
			buf = append(buf, "}\n"...)
		}
		writeChunks(w.out, buf)
		spare = buf
		if closed {
			return
		}
	}
}

// writeChunks writes buf, whole records at a time, in writes of at most
// chunkBytes (or one record, if a record is longer).
func writeChunks(out io.Writer, buf []byte) {
	for len(buf) > 0 {
		n := len(buf)
		if n > chunkBytes {
			n = chunkBytes
			if i := lastNewline(buf[:n]); i >= 0 {
				n = i + 1
			} else if i := indexNewline(buf[n:]); i >= 0 {
				n += i + 1
			} else {
				n = len(buf)
			}
		}
		out.Write(buf[:n]) //nolint:errcheck // nowhere to report a failed log write
		buf = buf[n:]
	}
}

func lastNewline(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// Close writes what is buffered and stops the writer. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}

// File is an open server log: a slog.Logger writing JSON records to
// <dir>/<name>.log through a Writer, rotated by size.
type File struct {
	Logger *slog.Logger
	name   string
	level  slog.Leveler // the least severe level written
	w      *Writer
	f      *lumberjack.Logger
}

// Rotation says when a log file is rotated and how many old files are
// kept, and what is written to it.
type Rotation struct {
	MaxMB int // a file is rotated before it would grow past this many MiB; 0: DefaultMaxMB
	Keep  int // old files kept (<name>-<time>.log); 0: DefaultKeep
	// Level is the least severe level written, read at each record (a
	// *slog.LevelVar changes it while the server runs); nil: debug.
	Level slog.Leveler
}

// Defaults of Rotation (config keys log_max_mb and log_keep).
const (
	DefaultMaxMB = 100
	DefaultKeep  = 5
)

// OpenFile opens (appending) the log file of server name in dir, creating
// dir if needed, rotated as r says. The logger carries the attribute
// server=name.
//
// The rotating file keeps one goroutine of its own, which removes old
// files after a rotation; it lives as long as the process.
func OpenFile(dir, name string, r Rotation) (*File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".log")
	// Open it once here, so that an unwritable directory is an error at
	// start rather than lost records later.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	f.Close()
	if r.MaxMB <= 0 {
		r.MaxMB = DefaultMaxMB
	}
	if r.Keep <= 0 {
		r.Keep = DefaultKeep
	}
	lj := &lumberjack.Logger{Filename: path, MaxSize: r.MaxMB, MaxBackups: r.Keep}
	w := NewWriter(lj)
	if r.Level == nil {
		r.Level = slog.LevelDebug
	}
	l := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: r.Level})).With("server", name)
	return &File{Logger: l, name: name, level: r.Level, w: w, f: lj}, nil
}

// Reopen closes the file so the next record opens it again: after an
// external tool (logrotate) moved it, records go to a new file at the
// configured path.
func (f *File) Reopen() error { return f.f.Close() }

// Close flushes and closes the log file.
func (f *File) Close() error {
	f.w.Close()
	return f.f.Close()
}

// Discard returns a logger that drops everything (tests, no log_dir).
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
