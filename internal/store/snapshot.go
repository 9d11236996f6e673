package store

import (
	"bufio"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Snapshot writes every entry yielded by all, the live table, to a new
// snapshot and deletes the log segments it covers. It first moves the log
// to a new segment, so entries appended while it runs are kept in the log;
// all must yield every entry appended before Snapshot was called (or a
// newer entry of the same client), and may yield later ones. The snapshot
// is written to a temporary file, fsynced, closed, renamed into place, and
// the directory is fsynced, and the manifest updated, before any segment
// is deleted. Only one
// Snapshot runs at a time; a concurrent call waits. Close makes a running
// Snapshot stop and return ErrClosed.
func (s *Store) Snapshot(all iter.Seq[Entry]) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	start := time.Now()
	reply := make(chan rotation, 1)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.ioErr != nil:
		err := s.ioErr
		s.mu.Unlock()
		return err
	}
	s.rotReq = reply
	s.mu.Unlock()
	s.kickWriter()
	rot := <-reply
	if rot.err != nil {
		return rot.err
	}

	size, err := s.writeSnapshot(rot, all)
	if err != nil {
		return err
	}
	if rot.clears {
		// The snapshot holds what the log lacked; record where the
		// neighbours are now, after the entries appended since.
		s.mu.Lock()
		s.lacking = false
		for _, name := range slices.Sorted(maps.Keys(s.peers)) {
			s.buf = appendPeer(s.buf, name, s.peers[name])
		}
		s.mu.Unlock()
		s.kickWriter()
		s.log.Info("store: snapshot written after the failure; acknowledging again", "dir", s.dir)
	}

	s.mu.Lock()
	var drop []segment
	s.oldSegs = slices.DeleteFunc(s.oldSegs, func(sg segment) bool {
		if sg.num < rot.num {
			drop = append(drop, sg)
			return true
		}
		return false
	})
	s.stats.Snapshots++
	s.stats.SnapshotSize = size
	s.stats.LastSnapshot = time.Since(start)
	s.compactAt = max(s.opts.CompactBytes, 2*size)
	last := s.cur.num
	s.mu.Unlock()
	s.manMu.Lock()
	s.first = rot.num
	err = writeManifest(s.dir, manifest{id: s.id, first: rot.num, last: last})
	s.manMu.Unlock()
	if err != nil {
		// A start finds the snapshot, which says the same; the segments
		// stay until a manifest is written.
		s.log.Warn("store: manifest not updated after a snapshot; keeping the old segments", "err", err)
		return nil
	}
	for _, sg := range drop {
		if err := os.Remove(s.segPath(sg.num)); err != nil {
			// Open deletes it next time: the snapshot covers it.
			s.log.Warn("store: remove log segment", "file", s.segPath(sg.num), "err", err)
		}
	}
	s.log.Info("store: snapshot written", "dir", s.dir, "bytes", size, "segments_dropped", len(drop),
		"duration", time.Since(start))
	return nil
}

// writeSnapshot writes the snapshot durably and returns its size.
func (s *Store) writeSnapshot(rot rotation, all iter.Seq[Entry]) (int64, error) {
	return writeSnapshotFile(s.dir, header{magic: snapMagic, id: s.id, a: rot.num, b: rot.seq}, rot.peers, all, s.closing.Load)
}

// writeSnapshotFile writes a snapshot with header h into dir: to a
// temporary file, fsynced, closed, renamed into place, and the directory
// fsynced. It returns the snapshot's size. It gives up with ErrClosed
// when stop returns true.
func writeSnapshotFile(dir string, h header, peers map[string]PeerPos, all iter.Seq[Entry], stop func() bool) (size int64, err error) {
	tmp := filepath.Join(dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(h.encode())
	var (
		rec     []byte
		entries uint64
	)
	for e := range all {
		if len(e.Line) > MaxLine {
			return 0, fmt.Errorf("store: snapshot: entry %d longer than MaxLine", e.Seq)
		}
		rec = appendEntry(rec[:0], e.Seq, e.Line)
		if _, err := w.Write(rec); err != nil {
			return 0, fmt.Errorf("store: snapshot: write %s: %w", tmp, err)
		}
		entries++
		if entries%4096 == 0 && stop() {
			return 0, ErrClosed
		}
	}
	for _, name := range slices.Sorted(maps.Keys(peers)) {
		rec = appendPeer(rec[:0], name, peers[name])
		w.Write(rec)
	}
	w.Write(appendEnd(rec[:0], entries, uint64(len(peers))))
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("store: snapshot: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("store: snapshot: fsync %s: %w", tmp, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("store: snapshot: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapName)); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return 0, fmt.Errorf("store: snapshot: fsync directory %s: %w", dir, err)
	}
	return fi.Size(), nil
}
