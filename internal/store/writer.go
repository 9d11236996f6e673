package store

import (
	"fmt"
	"maps"
	"os"
	"time"
)

// writer is the group-commit loop, the only goroutine that writes the log:
// it takes everything appended so far, writes it in one write, fsyncs it
// (SyncAlways), and closes the done channels of that batch. Appends that
// arrive meanwhile wait in s.buf for the next turn.
func (s *Store) writer() {
	defer close(s.writerDone)
	var (
		buf   []byte
		dones []chan struct{}
	)
	for {
		<-s.kick
		s.mu.Lock()
		buf, s.buf = s.buf, buf[:0]
		dones, s.pending = s.pending, dones[:0]
		seq := s.lastSeq
		rot := s.rotReq
		s.rotReq = nil
		var peers map[string]PeerPos
		if rot != nil {
			peers = maps.Clone(s.peers)
		}
		closing := s.closed
		err := s.ioErr
		s.mu.Unlock()

		if err == nil && len(buf) > 0 {
			err = s.writeBatch(buf, seq)
		}
		if rot != nil {
			r := rotation{seq: seq, peers: peers, err: err}
			if err == nil {
				r.num, r.err = s.rotate(seq)
			}
			rot <- r
		}
		if err == nil && closing && s.opts.Sync == SyncFast {
			err = s.syncFile(seq)
		}
		if err != nil {
			s.fail(err)
		} else {
			s.mu.Lock()
			s.doneSeq = max(s.doneSeq, seq)
			ready := s.releaseWaitersLocked(closing)
			s.mu.Unlock()
			for _, d := range ready {
				close(d)
			}
		}
		for _, d := range dones {
			close(d)
		}
		clear(dones)
		if cap(buf) > 4<<20 {
			buf, dones = nil, nil
		}
		if closing {
			s.fileMu.Lock()
			if err := s.f.Close(); err != nil {
				s.fail(fmt.Errorf("store: close %s: %w", s.f.Name(), err))
			}
			s.f = nil
			s.fileMu.Unlock()
			return
		}
		s.maybeCompact()
	}
}

// writeBatch writes buf to the newest segment and, in SyncAlways mode,
// fsyncs it. seq is the highest seq in buf.
func (s *Store) writeBatch(buf []byte, seq uint64) error {
	n, err := s.f.Write(buf)
	s.mu.Lock()
	s.cur.size += int64(n)
	s.stats.Batches++
	s.stats.BytesWritten += uint64(n)
	if err == nil {
		s.stats.WrittenSeq = seq
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: write %s: %w", s.f.Name(), err)
	}
	if s.opts.Sync == SyncAlways {
		return s.syncFile(seq)
	}
	select {
	case s.syncKick <- struct{}{}:
	default:
	}
	return nil
}

// syncFile fsyncs the newest segment, which holds every entry up to seq.
func (s *Store) syncFile(seq uint64) error {
	if h := s.opts.beforeSync; h != nil {
		h()
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.f == nil {
		return nil
	}
	start := time.Now()
	err := s.f.Sync()
	d := time.Since(start)
	s.mu.Lock()
	s.stats.Fsyncs++
	s.stats.LastFsync = d
	s.stats.MaxFsync = max(s.stats.MaxFsync, d)
	if err == nil {
		s.stats.DurableSeq = max(s.stats.DurableSeq, seq)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: fsync %s: %w", s.f.Name(), err)
	}
	return nil
}

// syncer fsyncs the log in SyncFast mode: after a write, at most
// FastInterval after the previous fsync.
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
		}
		last = time.Now()
	}
}

// rotate makes the current segment durable and starts the next one. It
// runs on the writer goroutine. If the next segment cannot be created, the
// store goes on writing the current one.
func (s *Store) rotate(seq uint64) (uint64, error) {
	if s.opts.Sync == SyncFast {
		if err := s.syncFile(seq); err != nil {
			s.fail(err)
			return 0, err
		}
	}
	s.mu.Lock()
	num := s.cur.num + 1
	s.mu.Unlock()
	nf, err := createSegment(s.dir, num, s.epoch)
	if err != nil {
		return 0, err
	}
	s.fileMu.Lock()
	old := s.f
	s.f = nf
	s.fileMu.Unlock()
	if err := old.Close(); err != nil {
		s.log.Warn("store: close log segment", "file", old.Name(), "err", err)
	}
	s.mu.Lock()
	s.oldSegs = append(s.oldSegs, s.cur)
	s.cur = segment{num: num, size: headerSize}
	s.mu.Unlock()
	return num, nil
}

// createSegment creates log segment num with its header and makes it
// durable, directory entry included, before anything is appended to it.
func createSegment(dir string, num, epoch uint64) (*os.File, error) {
	path := dir + string(os.PathSeparator) + segName(num)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(header{magic: walMagic, epoch: epoch, a: num}.encode())
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("store: create %s: %w", path, err)
	}
	return f, nil
}

// fail stops the store after a write or fsync error.
func (s *Store) fail(err error) {
	s.mu.Lock()
	first := s.ioErr == nil
	if first {
		s.ioErr = err
	}
	dones := append(s.pending, s.releaseWaitersLocked(true)...)
	s.pending = nil
	s.buf = nil
	s.mu.Unlock()
	if first {
		s.log.Error("store: stopped; entries are no longer saved", "dir", s.dir, "err", err)
	}
	for _, d := range dones {
		close(d)
	}
}

// maybeCompact calls Options.Compact when the log has outgrown its bound.
func (s *Store) maybeCompact() {
	if s.opts.Compact == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.logBytesLocked()
	if s.compacting || s.closed || s.ioErr != nil || size < s.compactAt {
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
