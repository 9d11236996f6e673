package store

import (
	"fmt"
	"io"
	"maps"
	"os"
	"time"
)

// writer is the group-commit loop, the only goroutine that writes the log:
// it takes everything appended so far, writes it in one write, fsyncs it
// (SyncAlways), and answers the appends of that batch. Appends that arrive
// meanwhile wait in s.buf for the next turn. After a failure it retries
// with back-off (see resume) and takes no new batch until one succeeds.
func (s *Store) writer() {
	defer close(s.writerDone)
	var (
		buf     []byte
		dones   []chan<- error
		backoff time.Duration
	)
	for {
		s.waitTurn(backoff)
		if failing, closing := s.failing(); failing {
			if err := s.resume(); err != nil {
				s.fail(err)
				if closing {
					s.closeFile()
					return
				}
				backoff = min(max(2*backoff, s.opts.retryMin), s.opts.retryMax)
				continue
			}
			backoff = 0
		}

		s.mu.Lock()
		buf, s.buf = s.buf, buf[:0]
		due := s.syncDue && len(buf) > 0 // entries buffered FastInterval: sync them now
		s.syncDue = false
		dones, s.pending = s.pending, dones[:0]
		seq := s.lastSeq
		rot := s.rotReq
		s.rotReq = nil
		var peers map[string]PeerPos
		clears := false
		if rot != nil {
			peers, clears = maps.Clone(s.peers), s.lacking
		}
		closing := s.closed
		// In SyncAlways mode a batch nobody waits for (peer marks, or
		// entries from neighbours past lazyBytes) is written now and
		// synced later, with the next batch someone waits for or by the
		// syncer; entries from neighbours buffered FastInterval (due) are
		// written and synced now.
		waited := len(dones) > 0 || len(s.waiters) > 0 || rot != nil || closing || due
		lazy := s.opts.Sync == SyncAlways && !waited
		s.mu.Unlock()

		var err error
		if len(buf) > 0 {
			err = s.writeBatch(buf, seq, lazy)
		} else if s.opts.Sync == SyncAlways && waited && !closing {
			err = s.syncFile(seq) // a Notify after batches written lazily
		}
		if err == nil && rot == nil && closing {
			err = s.syncFile(seq)
		}
		if rot != nil {
			r := rotation{seq: seq, peers: peers, err: err, clears: clears}
			if err == nil {
				r.num, r.err = s.rotate(seq)
			}
			rot <- r
		}
		if err != nil {
			s.fail(err)
			for _, d := range dones {
				d <- err
			}
		} else if !lazy {
			s.mu.Lock()
			s.doneSeq = max(s.doneSeq, seq)
			ready := s.releaseWaitersLocked(false)
			s.mu.Unlock()
			for _, d := range ready {
				d <- nil
			}
			for _, d := range dones {
				d <- nil
			}
		}
		clear(dones)
		if cap(buf) > 4<<20 {
			buf, dones = nil, nil
		}
		if failing, _ := s.failing(); failing { // this batch, a rotation or the syncer failed
			backoff = s.opts.retryMin
			if closing {
				s.kickWriter() // one more attempt at once before Close gives up
			}
			continue
		}
		if closing {
			s.closeFile()
			return
		}
		s.maybeCompact()
	}
}

// failing reports whether the store is failing, and whether it is closed.
func (s *Store) failing() (failing, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ioErr != nil, s.closed
}

// waitTurn waits for a kick, or, after a failure (backoff > 0), for the
// back-off to pass; kicks then only end the wait when the store closes.
func (s *Store) waitTurn(backoff time.Duration) {
	if backoff <= 0 {
		<-s.kick
		return
	}
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-s.kick:
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
		}
	}
}

// closeFile closes the newest segment when the store closes, without its
// preallocated zeros if everything written is durable.
func (s *Store) closeFile() {
	if failing, _ := s.failing(); !failing {
		if err := s.trim(); err != nil {
			// Everything appended is durable; a start accepts the zeros.
			s.log.Warn("store: log segment keeps its preallocated space", "err", err)
		}
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if err := s.f.Close(); err != nil {
		s.fail(fmt.Errorf("store: close %s: %w", s.f.Name(), err))
	}
	s.f = nil
	s.mu.Lock()
	ready := s.releaseWaitersLocked(true)
	err := s.ioErr
	s.mu.Unlock()
	if err == nil {
		err = ErrClosed
	}
	for _, d := range ready {
		d <- err
	}
}

// segmentPrealloc is the step in which log segments are preallocated
// ahead of their writes: a new segment gets this much, and a segment is
// extended by as much again before a write would pass its end.
const segmentPrealloc = 16 << 20

// writeBatch writes buf to the newest segment and, in SyncAlways mode
// unless lazy, fsyncs it; otherwise the syncer fsyncs it soon. seq is the
// highest seq in buf.
func (s *Store) writeBatch(buf []byte, seq uint64, lazy bool) error {
	s.ensureRoom(int64(len(buf)))
	n, err := s.f.Write(buf)
	s.mu.Lock()
	// All of buf joins the tail, written or not: after a failure it is
	// written again from the end of the last good fsync.
	s.tail = append(s.tail, buf...)
	s.tailSeq = seq
	if err != nil {
		s.gen++ // a concurrent fsync must not count this write as durable
	}
	s.cur.size += int64(n)
	if err == nil {
		s.written = s.cur.size
	}
	s.stats.Batches++
	s.stats.BytesWritten += uint64(n)
	if err == nil {
		s.stats.WrittenSeq = seq
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: write %s: %w", s.f.Name(), err)
	}
	if s.opts.Sync == SyncAlways && !lazy {
		return s.syncFile(seq)
	}
	select {
	case s.syncKick <- struct{}{}:
	default:
	}
	return nil
}

// syncFile fsyncs the newest segment, which holds every entry up to seq.
// A good fsync makes the tail written before it durable; one that began
// before a failure counts for nothing, as the writer rewrites that tail.
func (s *Store) syncFile(seq uint64) error {
	if h := s.opts.beforeSync; h != nil {
		h()
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return nil
	}
	s.mu.Lock()
	gen, size := s.gen, s.cur.size
	s.mu.Unlock()
	start := time.Now()
	err := datasync(s.f)
	d := time.Since(start)
	s.mu.Lock()
	s.stats.Fsyncs++
	s.stats.LastFsync = d
	s.stats.MaxFsync = max(s.stats.MaxFsync, d)
	if err == nil && gen == s.gen && s.ioErr == nil {
		s.stats.DurableSeq = max(s.stats.DurableSeq, seq)
		// Only whole good writes count: a write failing meanwhile
		// leaves a partial one, which the writer cuts.
		if synced := min(size, s.written); synced > s.synced {
			s.tail = s.tail[:copy(s.tail, s.tail[synced-s.synced:])]
			s.synced = synced
		}
	}
	if err != nil {
		s.syncLost = true
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: fsync %s: %w", s.f.Name(), err)
	}
	return nil
}

// resume makes the newest segment whole again after a failure: it cuts
// the file back to the end of its last whole good write, or to its size at
// the last good fsync if an fsync failed since (the kernel may then have
// dropped what was written), so that no partial write stays in the log;
// then it writes again what followed, and fsyncs. On success the store is
// healthy again.
func (s *Store) resume() error {
	s.fileMu.Lock()
	s.mu.Lock()
	base := s.written
	if s.syncLost {
		base = s.synced
	}
	synced, tail := s.synced, s.tail
	s.mu.Unlock()
	err := s.rewrite(base, tail[base-synced:])
	s.fileMu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cur.size = synced + int64(len(tail))
	s.synced, s.written, s.syncLost = s.cur.size, s.cur.size, false
	s.tail = s.tail[:0]
	s.stats.WrittenSeq = max(s.stats.WrittenSeq, s.tailSeq)
	s.stats.DurableSeq = s.stats.WrittenSeq
	since, quiet := s.failedAt, s.errQuiet
	s.ioErr, s.errQuiet, s.errLogged = nil, 0, time.Time{}
	s.mu.Unlock()
	s.log.Info("store: writing again", "dir", s.dir, "failed_for", time.Since(since), "unlogged_errors", quiet)
	return nil
}

// rewrite cuts the newest segment at size, writes tail after it and
// fsyncs. The caller holds fileMu.
func (s *Store) rewrite(size int64, tail []byte) error {
	name := s.f.Name()
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("store: truncate %s: %w", name, err)
	}
	s.alloc = size // the cut dropped the preallocated room; the next batch extends it again
	if _, err := s.f.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("store: seek %s: %w", name, err)
	}
	if len(tail) > 0 {
		if _, err := s.f.Write(tail); err != nil {
			return fmt.Errorf("store: write %s: %w", name, err)
		}
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", name, err)
	}
	return nil
}

// syncer fsyncs the log after a write that no one waits for (SyncFast: any
// write; SyncAlways: a batch written lazily), at most FastInterval after
// its previous fsync. In SyncAlways mode it then counts what it made
// durable as done.
func (s *Store) syncer() {
	defer close(s.syncerDone)
	var last time.Time
	for {
		select {
		case <-s.syncKick:
		case <-s.stopSync:
			return
		}
		if d := time.Until(last.Add(s.opts.FastInterval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.stopSync:
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		seq, failed := s.stats.WrittenSeq, s.ioErr != nil
		s.mu.Unlock()
		if failed {
			continue
		}
		if err := s.syncFile(seq); err != nil {
			s.fail(err)
			s.kickWriter()
		} else if s.opts.Sync == SyncAlways {
			s.mu.Lock()
			s.doneSeq = max(s.doneSeq, s.stats.DurableSeq)
			ready := s.releaseWaitersLocked(false)
			s.mu.Unlock()
			for _, d := range ready {
				d <- nil
			}
		}
		last = time.Now()
	}
}

// rotate makes the current segment durable and starts the next one. It
// runs on the writer goroutine. If the next segment cannot be created, the
// store goes on writing the current one.
func (s *Store) rotate(seq uint64) (uint64, error) {
	if s.opts.Sync == SyncFast || s.lazyUnsynced(seq) {
		if err := s.syncFile(seq); err != nil {
			s.fail(err)
			return 0, err
		}
	}
	if err := s.trim(); err != nil {
		s.fail(err)
		return 0, err
	}
	s.mu.Lock()
	num := s.cur.num + 1
	s.mu.Unlock()
	nf, alloc, err := createSegment(s.dir, num, s.id)
	if err != nil {
		return 0, err
	}
	s.manMu.Lock()
	err = writeManifest(s.dir, manifest{id: s.id, first: s.first, last: num})
	s.manMu.Unlock()
	if err != nil {
		// The new segment is the newest, so a start accepts it without
		// the manifest naming it; only deleting it would go unnoticed.
		s.log.Warn("store: manifest not updated", "err", err)
	}
	s.fileMu.Lock()
	old := s.f
	s.f = s.wrap(nf)
	s.alloc, s.grow = alloc, alloc > 0 && s.opts.WrapFile == nil
	s.fileMu.Unlock()
	if err := old.Close(); err != nil {
		s.log.Warn("store: close log segment", "file", old.Name(), "err", err)
	}
	s.mu.Lock()
	s.oldSegs = append(s.oldSegs, s.cur)
	s.cur = segment{num: num, size: headerSize}
	s.synced, s.written, s.syncLost = headerSize, headerSize, false
	s.tail = s.tail[:0]
	s.mu.Unlock()
	return num, nil
}

// lazyUnsynced reports whether entries up to seq were written without an
// fsync yet (SyncAlways batches written lazily).
func (s *Store) lazyUnsynced(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.DurableSeq < seq
}

// wrap applies Options.WrapFile.
func (s *Store) wrap(f *os.File) File {
	if s.opts.WrapFile != nil {
		return s.opts.WrapFile(f)
	}
	return f
}

// ensureRoom extends the preallocation of the newest segment, in steps of
// segmentPrealloc, before a write of n bytes would pass its end. A segment
// that cannot be preallocated (a wrapped file, a file system without
// fallocate) grows with its writes instead.
func (s *Store) ensureRoom(n int64) {
	end := s.cur.size + n
	if !s.grow || end <= s.alloc {
		return
	}
	f, ok := s.f.(*os.File)
	if !ok {
		s.grow = false
		return
	}
	size := (end/segmentPrealloc + 1) * segmentPrealloc
	if err := preallocate(f, size); err != nil {
		s.grow = false
		s.log.Debug("store: log segments grow with each write", "file", f.Name(), "err", err)
		return
	}
	s.alloc = size
}

// trim cuts the preallocated zeros off the newest segment and fsyncs it,
// before rotation makes it an older segment (only the newest may end in
// zeros) and when the store closes. The caller is the writer.
func (s *Store) trim() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	size := s.cur.size
	s.mu.Unlock()
	if s.f == nil || s.alloc <= size {
		return nil
	}
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("store: truncate %s: %w", s.f.Name(), err)
	}
	s.alloc = size
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", s.f.Name(), err)
	}
	return nil
}

// datasync makes what was written to f durable: fdatasync(2) for a segment
// the store opened itself (its size and blocks are flushed with the data,
// as reading it back needs them; its times are not), f.Sync for a wrapped
// one.
func datasync(f File) error {
	if osf, ok := f.(*os.File); ok {
		return fdatasync(osf)
	}
	return f.Sync()
}

// createSegment creates log segment num with its header and makes it
// durable, directory entry included, before anything is appended to it.
// It then preallocates segmentPrealloc bytes, durably, and returns the
// segment's size on disk (0 when it could not be preallocated). The
// header is durable before the file grows, so a crash leaves either a
// segment of a header alone, or a header and zeros.
func createSegment(dir string, num, id uint64) (*os.File, int64, error) {
	path := dir + string(os.PathSeparator) + segName(num)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(header{magic: walMagic, id: id, a: num}.encode())
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(dir)
	}
	var alloc int64
	if err == nil && preallocate(f, segmentPrealloc) == nil {
		alloc = segmentPrealloc
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, fmt.Errorf("store: create %s: %w", path, err)
	}
	return f, alloc, nil
}

// fail records a write or fsync error: the store answers appends with it
// until resume succeeds. It logs at most once per errLogEvery.
func (s *Store) fail(err error) {
	now := time.Now()
	s.mu.Lock()
	if s.ioErr == nil {
		s.failedAt = now
	}
	s.ioErr = err
	s.gen++
	s.stats.Errors++
	ready := append(s.pending, s.releaseWaitersLocked(true)...)
	s.pending = nil
	logIt := now.Sub(s.errLogged) >= errLogEvery
	quiet := s.errQuiet
	if logIt {
		s.errLogged, s.errQuiet = now, 0
	} else {
		s.errQuiet++
	}
	s.mu.Unlock()
	if logIt {
		s.log.Error("store: cannot save changes; refusing to acknowledge them and retrying", "dir", s.dir,
			"err", err.Error(), "unlogged_errors", quiet)
	}
	for _, d := range ready {
		d <- err
	}
}

// maybeCompact calls Options.Compact when the log has outgrown its bound,
// or lacks changes dropped during a failure (then again every second until
// a snapshot holds them).
func (s *Store) maybeCompact() {
	if s.opts.Compact == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.logBytesLocked()
	if s.compacting || s.closed || s.ioErr != nil {
		return
	}
	switch now := time.Now(); {
	case s.lacking && now.Before(s.rebuildAt):
		return
	case s.lacking:
		s.rebuildAt = now.Add(time.Second)
		if s.rebuild == nil {
			s.rebuild = time.AfterFunc(time.Second, s.kickWriter)
		} else {
			s.rebuild.Reset(time.Second)
		}
	case size < s.compactAt:
		return
	}
	s.compacting = true
	s.compactAt = size + s.opts.CompactBytes
	s.stats.Compactions++
	s.compactWG.Add(1)
	go func() {
		defer s.compactWG.Done()
		s.opts.Compact()
		s.mu.Lock()
		s.compacting = false
		s.mu.Unlock()
	}()
}
