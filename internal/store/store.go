package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// SyncMode says when an append counts as done.
type SyncMode int

const (
	// SyncAlways answers an append once the entry is fsynced.
	// Appends that arrive during an fsync share the next one (group commit).
	SyncAlways SyncMode = iota
	// SyncFast answers an append once the entry is written to the
	// operating system, and fsyncs within Options.FastInterval: a crash
	// of the process loses nothing, a crash of the machine may lose the last
	// few milliseconds.
	SyncFast
)

// String returns "always" or "fast".
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncFast:
		return "fast"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// DefaultFastInterval is the default Options.FastInterval.
const DefaultFastInterval = 50 * time.Millisecond

// DefaultCompactBytes is the default Options.CompactBytes.
const DefaultCompactBytes = 64 << 20

// DefaultMaxPending is the default Options.MaxPending.
const DefaultMaxPending = 64 << 20

// errLacking is the answer to appends while the log lacks changes dropped
// during a failure, until a snapshot holds them.
var errLacking = errors.New("store: changes made while the disk failed outgrew memory; writing a snapshot before acknowledging again")

// Options configures a Store. The zero value of every field but Dir is a
// usable default.
type Options struct {
	// Dir is the store's directory, <data_dir>/<server name>; it is
	// created if missing.
	Dir string
	// Sync is the durability mode; the default is SyncAlways.
	Sync SyncMode
	// FastInterval bounds the delay between a write and its fsync in
	// SyncFast mode; default DefaultFastInterval.
	FastInterval time.Duration
	// Compact, if set, is called in a goroutine of its own when the log
	// outgrows max(CompactBytes, 2 × the size of the last snapshot); it
	// should call Snapshot with the live table. It is not called again
	// while it runs; if it fails to shrink the log, it is called again
	// after the log grows by another CompactBytes. If Compact is nil,
	// the log grows until the caller calls Snapshot.
	Compact func()
	// CompactBytes is the least log size that triggers Compact; default
	// DefaultCompactBytes.
	CompactBytes int64
	// MaxPending bounds the bytes of log kept in memory while writes
	// fail; default DefaultMaxPending. Past it the store drops what it
	// kept and, once the disk works again, has Compact write a snapshot
	// before it acknowledges anything (without Compact it cannot, and
	// refuses appends until it is reopened).
	MaxPending int
	// Logger receives warnings about damaged files and failures; default:
	// discard.
	Logger *slog.Logger
	// WrapFile, if set, wraps every log segment as the store writes it;
	// it lets tests inject write and fsync errors.
	WrapFile func(File) File

	// beforeSync, if set, is called by the writer before each fsync of a
	// batch (tests use it to hold a batch back).
	beforeSync func()

	// retryMin and retryMax bound the back-off between attempts to write
	// again after a failure; defaults DefaultRetryMin, DefaultRetryMax.
	retryMin, retryMax time.Duration
}

// Defaults of the back-off between attempts to write after a failure.
const (
	DefaultRetryMin = 20 * time.Millisecond
	DefaultRetryMax = 2 * time.Second
)

// errLogEvery is the least time between two log lines about failures.
const errLogEvery = time.Minute

// File is a log segment as the store writes it: an *os.File, unless
// Options.WrapFile wraps it.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
	Close() error
	Name() string
}

// Entry is one change of the table: a client's AT line and the change
// number this server gave it.
type Entry struct {
	Seq  uint64 // the server's change number of this record, increasing
	Line string // the AT line, without line ending
}

// PeerPos is how far this server has received a neighbour's changes: the
// neighbour's epoch and the highest of its change numbers received.
type PeerPos struct {
	Epoch, Seq uint64
}

// State is what Open recovered.
type State struct {
	// Seq is the highest change number recovered, 0 for a fresh directory.
	Seq uint64
	// Entries holds every entry recovered: the snapshot's, then the log's
	// in the order appended. A client may appear more than once; the caller
	// keeps the newest. Entries present in both the snapshot and the log
	// appear once.
	Entries []Entry
	// Peers is the latest position recorded for each neighbour.
	Peers map[string]PeerPos
	// Runs is the history of the directory's runs, the one Open started
	// last.
	Runs Runs
}

// Stats are counters of a Store since Open.
type Stats struct {
	Appends      uint64        // entries appended
	PeerMarks    uint64        // peer marks appended
	Batches      uint64        // writes of a batch to the log
	Fsyncs       uint64        // fsyncs of the log
	BytesWritten uint64        // bytes written to the log
	LastFsync    time.Duration // duration of the last fsync of the log
	MaxFsync     time.Duration // longest fsync of the log
	WrittenSeq   uint64        // highest seq written to the operating system
	DurableSeq   uint64        // highest seq fsynced
	LogBytes     int64         // size of the log segments on disk
	Segments     int           // number of log segments on disk
	Snapshots    uint64        // snapshots written
	SnapshotSize int64         // size of the last snapshot, or of the one found by Open
	LastSnapshot time.Duration // duration of the last Snapshot
	Compactions  uint64        // calls of Options.Compact
	Errors       uint64        // failed writes, fsyncs and truncations of the log
}

// ErrClosed is returned by operations on a closed Store, and by Err after
// Close.
var ErrClosed = errors.New("store: closed")

// segment is a log segment on disk.
type segment struct {
	num  uint64
	size int64
}

// rotation is the writer's answer to a Snapshot's request for a new segment.
type rotation struct {
	num    uint64             // first segment not covered by the snapshot
	seq    uint64             // highest seq appended before the rotation
	peers  map[string]PeerPos // peer positions at the rotation
	err    error
	clears bool // the log lacked changes at the rotation: the snapshot makes it whole
}

// Store is an open store directory. Its methods are safe for concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	dir  string
	id   uint64 // immutable: the store's id, in every file's header
	lock *os.File

	kick       chan struct{} // capacity 1: wakes the writer
	writerDone chan struct{}
	syncKick   chan struct{} // capacity 1: wakes the syncer (SyncFast)
	stopSync   chan struct{}
	syncerDone chan struct{}
	closing    atomic.Bool // set by Close; makes a running Snapshot give up

	snapMu    sync.Mutex // held by Snapshot; Close takes it to wait for one
	compactWG sync.WaitGroup

	manMu sync.Mutex // guards first and the writes of the manifest
	first uint64     // the first segment not covered by the snapshot

	mu         sync.Mutex // guards the fields below
	buf        []byte     // encoded records not yet taken by the writer
	pending    []chan<- error
	waiters    []waiter // Notify calls waiting for doneSeq to reach their seq
	lastSeq    uint64   // highest seq appended
	doneSeq    uint64   // highest seq whose batch is done (written, and fsynced in SyncAlways)
	peers      map[string]PeerPos
	rotReq     chan rotation
	closed     bool
	ioErr      error     // the current failure; nil while writes succeed
	failedAt   time.Time // when the current failure began
	gen        uint64    // failures so far: an fsync that began before one covers nothing
	synced     int64     // size of the newest segment at its last good fsync
	written    int64     // size of the newest segment after its last whole good write; >= synced
	syncLost   bool      // an fsync failed since synced: what was written after it is not trusted
	tail       []byte    // bytes handed to the newest segment after synced: rewritten after a failure
	tailSeq    uint64    // highest seq in tail
	errLogged  time.Time // when a failure was last logged
	errQuiet   uint64    // failures not logged since then
	lacking    bool      // changes were dropped while failing (over MaxPending): only a snapshot makes the log whole
	lazyKick   bool      // a kick of the writer is due within FastInterval, for entries nobody waits for (syncBuffered)
	syncDue    bool      // that kick came: the writer writes and syncs what is buffered at once
	rebuildAt  time.Time // no snapshot for lacking before then
	rebuild    *time.Timer
	compacting bool
	compactAt  int64
	oldSegs    []segment // segments before cur, oldest first
	cur        segment
	stats      Stats

	fileMu sync.Mutex // guards f; held by rotation, truncation and the syncer's fsync
	f      File       // the newest segment; written only by the writer

	// alloc and grow are owned by the writer goroutine (set by recover
	// before it starts).
	alloc int64 // the newest segment's size on disk, preallocated zeros included; >= cur.size while grow
	grow  bool  // the newest segment is preallocated ahead of its writes (not when wrapped or unsupported)
}

// Open opens the store in o.Dir, creating it if needed, recovers its state
// and starts a new run and a new log segment. A write cut short at the end
// of the newest segment is logged and cut; any other damage or missing
// file is a *Damage error naming the file and the offset, and Open then
// changes nothing.
func Open(o Options) (*Store, *State, error) {
	if o.Dir == "" {
		return nil, nil, errors.New("store: no directory")
	}
	if o.Sync != SyncAlways && o.Sync != SyncFast {
		return nil, nil, fmt.Errorf("store: bad sync mode %d", o.Sync)
	}
	if o.FastInterval <= 0 {
		o.FastInterval = DefaultFastInterval
	}
	if o.CompactBytes <= 0 {
		o.CompactBytes = DefaultCompactBytes
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.retryMin <= 0 {
		o.retryMin = DefaultRetryMin
	}
	if o.retryMax < o.retryMin {
		o.retryMax = max(DefaultRetryMax, o.retryMin)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := mkdirDurable(o.Dir); err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{
		opts:       o,
		log:        log,
		dir:        o.Dir,
		lock:       lock,
		kick:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	st, err := s.recover()
	if err != nil {
		unlockDir(lock)
		return nil, nil, err
	}
	s.syncKick = make(chan struct{}, 1)
	s.stopSync = make(chan struct{})
	s.syncerDone = make(chan struct{})
	go s.syncer()
	go s.writer()
	return s, st, nil
}

// Append adds an entry to the log. If done is not nil, Append sends one
// value on it, which must not block (give done room for one value): nil
// once the entry is durable under the Sync mode (see the package
// documentation), or the error that keeps it from being so for now (a
// failed write or fsync, or ErrClosed). Append never waits for the disk.
// While the store fails, entries are kept in memory, done gets the
// failure at once, and the entries are written when the disk accepts
// writes again. The caller calls Append in increasing seq order, after the
// change is visible to the iterator it passes to Snapshot. Append panics
// if line is longer than MaxLine.
func (s *Store) Append(seq uint64, line string, done chan<- error) {
	if len(line) > MaxLine {
		panic("store: line longer than MaxLine")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		answer(done, ErrClosed)
		return
	}
	s.lastSeq = max(s.lastSeq, seq)
	s.stats.Appends++
	if s.overflowLocked() {
		err := s.ioErr
		s.mu.Unlock()
		answer(done, err)
		return
	}
	s.buf = appendEntry(s.buf, seq, line)
	if err := s.refusalLocked(); err != nil {
		failing := s.ioErr != nil
		s.mu.Unlock()
		answer(done, err)
		if !failing {
			s.kickWriter()
		}
		return
	}
	if done == nil && len(s.buf) < lazyBytes {
		// Nobody waits for it (a neighbour's change, or one whose
		// waiter calls Notify next): it goes with the next batch someone
		// waits for, or within FastInterval, and costs no write of its
		// own. One kick at a time is due, whatever the writer takes
		// meanwhile.
		due := s.lazyKick
		s.lazyKick = true
		s.mu.Unlock()
		if !due {
			time.AfterFunc(s.opts.FastInterval, s.syncBuffered)
		}
		return
	}
	if done != nil {
		s.pending = append(s.pending, done)
	}
	s.mu.Unlock()
	s.kickWriter()
}

// syncBuffered has the writer write and sync the entries nobody waits for,
// FastInterval after the first of them was buffered.
func (s *Store) syncBuffered() {
	s.mu.Lock()
	s.syncDue, s.lazyKick = true, false
	s.mu.Unlock()
	s.kickWriter()
}

// lazyBytes is how much of entries nobody waits for the store buffers
// before writing them without waiting for FastInterval.
const lazyBytes = 64 << 10

// Notify sends one value on done, which must not block (give done room
// for one value): nil once every entry appended before the call is
// durable under the Sync mode, or the error that keeps one of them from
// being so for now. While the store fails, the error comes at once. It
// never waits. It lets a caller whose entry was appended by someone else
// (for example a change hook) learn whether it was saved.
func (s *Store) Notify(done chan<- error) {
	s.mu.Lock()
	err := s.refusalLocked()
	switch {
	case err != nil && (s.lastSeq > s.doneSeq || s.lacking):
		s.mu.Unlock()
		done <- err
		return
	case s.lastSeq <= s.doneSeq:
		s.mu.Unlock()
		done <- nil
		return
	case s.closed:
		s.mu.Unlock()
		done <- ErrClosed
		return
	}
	s.waiters = append(s.waiters, waiter{seq: s.lastSeq, done: done})
	s.mu.Unlock()
	s.kickWriter()
}

// Health returns nil while the store writes and syncs successfully, and
// otherwise an error saying why it cannot, and that it is retrying (or
// ErrClosed after Close).
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ioErr != nil:
		return fmt.Errorf("%w; retrying since %s", s.ioErr, s.failedAt.UTC().Format(time.RFC3339))
	case s.lacking:
		return errLacking
	case s.closed:
		return ErrClosed
	}
	return nil
}

// refusalLocked returns why appends are not acknowledged now, or nil.
func (s *Store) refusalLocked() error {
	switch {
	case s.ioErr != nil:
		return s.ioErr
	case s.lacking:
		return errLacking
	}
	return nil
}

// overflowLocked reports whether the store, failing, keeps no more in
// memory: past MaxPending it drops what it kept and marks the log lacking.
func (s *Store) overflowLocked() bool {
	if s.ioErr == nil {
		return false
	}
	if !s.lacking && len(s.buf) < s.opts.MaxPending {
		return false
	}
	if !s.lacking {
		s.log.Warn("store: changes kept in memory while the disk fails passed the bound; dropping them, a snapshot will hold them once the disk works",
			"dir", s.dir, "bytes", len(s.buf))
	}
	s.lacking = true
	s.buf = nil
	return true
}

// answer sends err on done, if there is one.
func answer(done chan<- error, err error) {
	if done != nil {
		done <- err
	}
}

// waiter is a Notify call: done is answered once doneSeq reaches seq.
type waiter struct {
	seq  uint64
	done chan<- error
}

// releaseWaitersLocked removes the waiters whose entries are done and
// returns their channels; all of them when all is set.
func (s *Store) releaseWaitersLocked(all bool) []chan<- error {
	var ready []chan<- error
	keep := s.waiters[:0]
	for _, w := range s.waiters {
		if all || w.seq <= s.doneSeq {
			ready = append(ready, w.done)
		} else {
			keep = append(keep, w)
		}
	}
	clear(s.waiters[len(keep):])
	s.waiters = keep
	return ready
}

// MarkPeer records that this server has received the changes of neighbour
// name up to pos. It does not wait: the mark is written after every entry
// appended before it, in the next batch (which it starts if none is
// pending), so it is durable once that batch is, and at the latest once a
// later append is answered with nil. Marking often is cheap: marks share
// batches and fsyncs with appends. While the store fails, marks wait in
// memory behind the entries appended before them.
func (s *Store) MarkPeer(name string, pos PeerPos) {
	if len(name) > MaxLine {
		panic("store: peer name longer than MaxLine")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.peers[name] = pos
	s.stats.PeerMarks++
	// While the log lacks changes, a mark could claim what it lacks: the
	// position goes into the snapshot that makes the log whole instead.
	if s.overflowLocked() || s.lacking {
		s.mu.Unlock()
		return
	}
	s.buf = appendPeer(s.buf, name, pos)
	s.mu.Unlock()
	s.kickWriter()
}

// Err returns the store's current failure to write or fsync (nil once it
// writes again), or ErrClosed after Close.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refusalLocked(); err != nil {
		return err
	}
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close writes and fsyncs everything appended (one more attempt if the
// store is failing), answers all appends, waits for a running Snapshot or
// Compact to return, and closes the files. Appends after Close are
// dropped and answered ErrClosed at once. Close returns the error that
// kept the store from saving everything, if any.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.closing.Store(true)
	s.kickWriter()
	<-s.writerDone
	s.mu.Lock()
	if s.rebuild != nil {
		s.rebuild.Stop()
	}
	s.mu.Unlock()
	if s.stopSync != nil {
		close(s.stopSync)
		<-s.syncerDone
	}
	s.compactWG.Wait()
	s.snapMu.Lock() // waits for a running Snapshot, which gives up on closing
	s.snapMu.Unlock()
	unlockDir(s.lock)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ioErr
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.LogBytes = s.logBytesLocked()
	st.Segments = len(s.oldSegs) + 1
	return st
}

func (s *Store) logBytesLocked() int64 {
	n := s.cur.size
	for _, sg := range s.oldSegs {
		n += sg.size
	}
	return n
}

func (s *Store) kickWriter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) segPath(num uint64) string {
	return filepath.Join(s.dir, segName(num))
}

func segName(num uint64) string { return fmt.Sprintf("wal-%016x.log", num) }

const (
	snapName = "snapshot.dat"
	tmpName  = "snapshot.tmp"
)

// mkdirDurable creates dir and any missing parents, and fsyncs the parent
// of each directory it creates, so that the new directories survive a
// crash along with the files later made durable in them.
func mkdirDurable(dir string) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory, making the creation, renaming and removal of
// its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
