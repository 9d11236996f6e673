package store

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// recover reads the directory, refuses damage, cuts a torn tail, records
// the new run and creates the segment new appends go to. It runs before
// the writer starts.
func (s *Store) recover() (*State, error) {
	start := time.Now()
	sc, err := scanDir(s.dir)
	if err != nil {
		return nil, err
	}
	if sc.damage != nil {
		return nil, sc.damage
	}
	for _, name := range sc.tmps {
		path := filepath.Join(s.dir, name)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		s.log.Info("store: removed an unfinished file", "file", path)
	}
	for _, num := range sc.covered {
		if err := os.Remove(s.segPath(num)); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		s.log.Info("store: removed log segment covered by the snapshot", "file", s.segPath(num))
	}
	if sc.tornHdr != 0 {
		path := s.segPath(sc.tornHdr)
		s.log.Warn("store: removing log segment whose creation was cut short", "file", path)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	if t := sc.torn; t != nil {
		seg := sc.segs[len(sc.segs)-1]
		s.log.Warn("store: cutting a torn write at the end of the log", "file", t.File, "offset", t.Offset,
			"dropped_bytes", seg.fsize-t.Offset, "reason", t.Reason)
		if err := truncateDurable(t.File, t.Offset); err != nil {
			return nil, err
		}
	}
	s.id = sc.id
	if s.id == 0 {
		s.id = newID()
		s.log.Info("store: new store", "dir", s.dir, "id", fmt.Sprintf("%016x", s.id))
	}
	st := sc.st
	if st.Runs, err = startRun(s.dir, sc.runs, st.Seq); err != nil {
		return nil, err
	}
	if z := sc.zeros; z != nil {
		// A segment left open by a crash ends in the zeros preallocated
		// for it; it becomes an older segment, which must not.
		s.log.Info("store: cutting the preallocated space after the log", "file", z.File, "offset", z.Offset)
		if err := truncateDurable(z.File, z.Offset); err != nil {
			return nil, err
		}
	}
	next := sc.next()
	f, alloc, err := createSegment(s.dir, next, s.id)
	if err != nil {
		return nil, err
	}
	s.first = sc.first
	if err := writeManifest(s.dir, manifest{id: s.id, first: s.first, last: next}); err != nil {
		f.Close()
		return nil, err
	}
	s.f = s.wrap(f)
	s.alloc, s.grow = alloc, alloc > 0 && s.opts.WrapFile == nil
	s.cur = segment{num: next, size: headerSize}
	s.synced, s.written = headerSize, headerSize
	for _, sg := range sc.segs {
		s.oldSegs = append(s.oldSegs, segment{num: sg.num, size: sg.size})
	}
	s.lastSeq = st.Seq
	s.doneSeq = st.Seq
	s.peers = make(map[string]PeerPos, len(st.Peers))
	for k, v := range st.Peers {
		s.peers[k] = v
	}
	s.stats.WrittenSeq, s.stats.DurableSeq = st.Seq, st.Seq
	s.stats.SnapshotSize = max(sc.snapSize, 0)
	s.compactAt = max(s.opts.CompactBytes, 2*s.stats.SnapshotSize)
	s.log.Info("store: recovered", "dir", s.dir, "entries", len(st.Entries), "seq", st.Seq,
		"segments", len(s.oldSegs), "log_bytes", s.logBytesLocked(), "snapshot_bytes", s.stats.SnapshotSize,
		"runs", len(st.Runs), "duration", time.Since(start))
	return st, nil
}

// truncateDurable cuts the file at path to size and fsyncs it.
func truncateDurable(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("store: truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", path, err)
	}
	return nil
}
