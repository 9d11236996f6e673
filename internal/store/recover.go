package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// recover reads the snapshot and the log segments, repairs a damaged tail,
// and creates the segment new appends go to. It runs before the writer
// starts.
func (s *Store) recover() (*State, error) {
	start := time.Now()
	st := &State{Peers: make(map[string]PeerPos)}
	if err := os.Remove(filepath.Join(s.dir, tmpName)); err == nil {
		s.log.Info("store: removed unfinished snapshot", "file", filepath.Join(s.dir, tmpName))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: %w", err)
	}

	// first is the first segment not covered by the snapshot.
	first := uint64(1)
	var dup dedup
	snapPath := filepath.Join(s.dir, snapName)
	h, size, err := readSnapshot(snapPath, st)
	switch {
	case err == nil:
		s.epoch = h.epoch
		first = h.a
		st.Seq = h.b
		s.stats.SnapshotSize = size
		dup = dedup{snap: st.Entries, above: h.b}
		for _, e := range st.Entries {
			dup.max = max(dup.max, e.Seq)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}

	nums, err := listSegments(s.dir)
	if err != nil {
		return nil, err
	}
	hole := false // a damaged record was found before the end of the log
	want := first
	for i, num := range nums {
		path := s.segPath(num)
		if num < first {
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
			s.log.Info("store: removed log segment covered by the snapshot", "file", path)
			continue
		}
		if num != want {
			return nil, fmt.Errorf("store: log segment %s is missing", s.segPath(want))
		}
		want++
		res, err := s.readSegment(path, num, i == len(nums)-1, hole, st, &dup)
		if err != nil {
			return nil, err
		}
		if res.removed {
			continue
		}
		if s.epoch == 0 {
			s.epoch = res.epoch
		} else if res.epoch != s.epoch {
			return nil, fmt.Errorf("store: log segment %s belongs to epoch %016x, not %016x", path, res.epoch, s.epoch)
		}
		hole = hole || res.hole
		s.oldSegs = append(s.oldSegs, res.seg)
	}
	next := first
	if n := len(s.oldSegs); n > 0 {
		next = s.oldSegs[n-1].num + 1
	}
	if s.epoch == 0 {
		s.epoch = newEpoch()
		s.log.Info("store: new store", "dir", s.dir, "epoch", fmt.Sprintf("%016x", s.epoch))
	}
	for _, e := range st.Entries {
		st.Seq = max(st.Seq, e.Seq)
	}
	st.Epoch = s.epoch

	f, err := createSegment(s.dir, next, s.epoch)
	if err != nil {
		return nil, err
	}
	s.f = f
	s.cur = segment{num: next, size: headerSize}
	s.lastSeq = st.Seq
	s.peers = make(map[string]PeerPos, len(st.Peers))
	for k, v := range st.Peers {
		s.peers[k] = v
	}
	s.stats.WrittenSeq, s.stats.DurableSeq = st.Seq, st.Seq
	s.compactAt = max(s.opts.CompactBytes, 2*s.stats.SnapshotSize)
	s.log.Info("store: recovered", "dir", s.dir, "entries", len(st.Entries), "seq", st.Seq,
		"segments", len(s.oldSegs), "log_bytes", s.logBytesLocked(), "snapshot_bytes", s.stats.SnapshotSize,
		"duration", time.Since(start))
	return st, nil
}

// readSnapshot reads the snapshot at path into st. Any damage is an error
// naming the file.
func readSnapshot(path string, st *State) (header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return header{}, 0, fmt.Errorf("store: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("store: snapshot %s is damaged: %s", path, fmt.Sprintf(format, a...))
	}
	var hb [headerSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return header{}, 0, bad("header: %v", err)
	}
	h, err := decodeHeader(hb[:], snapMagic)
	if err != nil {
		return header{}, 0, bad("header: %v", err)
	}
	// Records are about 100 bytes; reserve room to avoid regrowing.
	st.Entries = slices.Grow(st.Entries, int(fi.Size()/100))
	r := newReader(f, headerSize)
	var peers uint64
	for {
		rec, err := r.next()
		if err == io.EOF {
			return header{}, 0, bad("no end record at offset %d", r.off)
		}
		if err != nil {
			return header{}, 0, bad("%v", err)
		}
		switch rec.typ {
		case recEntry:
			st.Entries = append(st.Entries, Entry{Seq: rec.a, Line: string(rec.text)})
		case recPeer:
			st.Peers[string(rec.text)] = PeerPos{Epoch: rec.a, Seq: rec.b}
			peers++
		case recEnd:
			if rec.a != uint64(len(st.Entries)) || rec.b != peers {
				return header{}, 0, bad("end record counts %d entries and %d peers, found %d and %d",
					rec.a, rec.b, len(st.Entries), peers)
			}
			if _, err := r.next(); err != io.EOF {
				return header{}, 0, bad("data after the end record at offset %d", r.off)
			}
			return h, fi.Size(), nil
		}
	}
}

// segResult is what readSegment found.
type segResult struct {
	seg     segment
	epoch   uint64
	hole    bool // damaged before its end; records after the damage were skipped
	removed bool // a newest segment whose creation was cut short, now removed
}

// readSegment reads log segment num into st; last says it is the newest.
// afterHole says peer marks must be ignored; dup finds entries already
// recovered from the snapshot.
func (s *Store) readSegment(path string, num uint64, last, afterHole bool, st *State, dup *dedup) (segResult, error) {
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return segResult{}, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segResult{}, fmt.Errorf("store: %w", err)
	}
	size := fi.Size()
	var hb [headerSize]byte
	n, err := io.ReadFull(f, hb[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return segResult{}, fmt.Errorf("store: %w", err)
	}
	h, herr := decodeHeader(hb[:n], walMagic)
	if herr == nil && h.a != num {
		herr = fmt.Errorf("header names segment %d", h.a)
	}
	if herr != nil {
		// A segment's header is fsynced before anything is appended, so a
		// bad header is the trace of a crash during creation only if the
		// file is the newest and holds nothing more.
		if last && size <= headerSize {
			s.log.Warn("store: removing log segment whose creation was cut short", "file", path, "size", size, "err", herr)
			f.Close()
			if err := os.Remove(path); err != nil {
				return segResult{}, fmt.Errorf("store: %w", err)
			}
			return segResult{removed: true}, nil
		}
		return segResult{}, fmt.Errorf("store: log segment %s is damaged: header: %v", path, herr)
	}

	st.Entries = slices.Grow(st.Entries, int(size/100))
	r := newReader(f, headerSize)
	for {
		rec, err := r.next()
		if err == io.EOF {
			return segResult{seg: segment{num, size}, epoch: h.epoch}, nil
		}
		if err == nil {
			switch rec.typ {
			case recEntry:
				if !dup.has(rec.a) {
					st.Entries = append(st.Entries, Entry{Seq: rec.a, Line: string(rec.text)})
				}
				continue
			case recPeer:
				if !afterHole {
					st.Peers[string(rec.text)] = PeerPos{Epoch: rec.a, Seq: rec.b}
				}
				continue
			default:
				err = &damage{r.off, "end record in a log segment"}
			}
		}
		var d *damage
		if !errors.As(err, &d) {
			return segResult{}, fmt.Errorf("store: read %s: %w", path, err)
		}
		if last {
			s.log.Warn("store: truncating damaged log tail", "file", path, "offset", d.off,
				"dropped_bytes", size-d.off, "reason", d.reason)
			if err := f.Truncate(d.off); err != nil {
				return segResult{}, fmt.Errorf("store: truncate %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return segResult{}, fmt.Errorf("store: fsync %s: %w", path, err)
			}
			return segResult{seg: segment{num, d.off}, epoch: h.epoch}, nil
		}
		s.log.Error("store: damaged record inside the log; skipping the rest of this segment, ignoring later peer marks",
			"file", path, "offset", d.off, "skipped_bytes", size-d.off, "reason", d.reason)
		return segResult{seg: segment{num, size}, epoch: h.epoch, hole: true}, nil
	}
}

// dedup finds log entries that the snapshot holds already: entries
// appended while the snapshot was being written, which the snapshot may
// have seen. Their seqs are above the snapshot header's seq, and at most
// the snapshot's highest seq.
type dedup struct {
	snap  []Entry // the snapshot's entries
	above uint64  // the snapshot header's seq
	max   uint64  // the highest seq in the snapshot
	set   map[uint64]bool
}

// has reports whether the snapshot holds an entry with this seq. It builds
// its set on first need, which a log without such entries never has.
func (d *dedup) has(seq uint64) bool {
	if seq <= d.above || seq > d.max {
		return false
	}
	if d.set == nil {
		d.set = make(map[uint64]bool)
		for _, e := range d.snap {
			if e.Seq > d.above {
				d.set[e.Seq] = true
			}
		}
	}
	return d.set[seq]
}

// listSegments returns the numbers of the log segments in dir, sorted.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var nums []uint64
	for _, de := range des {
		name := de.Name()
		hex, ok := strings.CutPrefix(name, "wal-")
		if !ok {
			continue
		}
		hex, ok = strings.CutSuffix(hex, ".log")
		if !ok || len(hex) != 16 {
			continue
		}
		n, err := strconv.ParseUint(hex, 16, 64)
		if err != nil || n == 0 {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// newEpoch returns a random non-zero epoch.
func newEpoch() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		if e := binary.LittleEndian.Uint64(b[:]); e != 0 {
			return e
		}
	}
}
