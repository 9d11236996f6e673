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
)

// Damage is a place in a store directory where stored data is damaged or
// missing. Open refuses to start on it, Check reports it and Repair cuts
// the directory's history there.
type Damage struct {
	File    string // the damaged file, or the missing one
	Offset  int64  // byte offset in File where the damage starts
	Reason  string
	Missing bool // File does not exist but must
}

// Error names the file and the offset.
func (d *Damage) Error() string {
	if d.Missing {
		return fmt.Sprintf("store: %s is missing: %s", d.File, d.Reason)
	}
	return fmt.Sprintf("store: %s is damaged at offset %d: %s", d.File, d.Offset, d.Reason)
}

// damageKind says what Repair does about a damage.
type damageKind int

const (
	kindNone     damageKind = iota
	kindManifest            // the manifest: rewritten from the files
	kindRuns                // the run history: cut at the bad line
	kindSnapshot            // the snapshot, or a snapshot that must exist: its intact prefix is kept, the log dropped
	kindMissing             // a log segment that must exist: later segments are dropped
	kindSegment             // inside a log segment: cut there, later segments dropped
)

// scan is what a store directory holds, read without changing anything.
// Open, Check and Repair share it.
type scan struct {
	dir    string
	id     uint64 // the store's id, 0 if no file names one
	man    manifest
	hasMan bool
	runs   Runs

	snapSize    int64 // -1: no snapshot
	snapEntries int
	first       uint64    // first segment not covered by the snapshot
	segs        []segRead // segments read before any damage, oldest first
	covered     []uint64  // segments below first, which Open deletes
	tmps        []string  // temporary files left by a crash, which Open deletes
	tornHdr     uint64    // newest segment whose creation was cut short, which Open removes; 0: none
	torn        *Damage   // a torn write at the end of the newest segment, which Open cuts
	zeros       *Damage   // where the preallocated zeros after the newest segment's records begin, which Open cuts
	maxNum      uint64    // highest segment number found

	damage  *Damage // the first damage; nil when the directory is sound
	kind    damageKind
	cutting bool // records found from here on are after the damage
	dropped int  // intact records after the damage: what Repair drops

	st  *State
	dup dedup
}

// segRead is a log segment as read.
type segRead struct {
	num     uint64
	size    int64 // bytes kept: the file's size, or the offset of a torn tail
	fsize   int64 // the file's size
	records int
}

func (sc *scan) setDamage(d *Damage, k damageKind) {
	if sc.damage != nil {
		return
	}
	sc.damage, sc.kind = d, k
	sc.cutting = k == kindSnapshot || k == kindMissing || k == kindSegment
}

// scanDir reads the store directory dir. Damage is recorded in the
// result; the error is for failures to read.
func scanDir(dir string) (*scan, error) {
	sc := &scan{dir: dir, snapSize: -1, st: &State{Peers: make(map[string]PeerPos)}}
	for _, name := range []string{tmpName, manifestTmp, runsTmp} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			sc.tmps = append(sc.tmps, name)
		}
	}
	var err error
	sc.man, sc.hasMan, err = readManifest(dir)
	if d := asDamage(err); d != nil {
		sc.setDamage(d, kindManifest)
		sc.hasMan = false
	} else if err != nil {
		return nil, err
	}
	sc.runs, err = readRuns(dir)
	if d := asDamage(err); d != nil {
		sc.setDamage(d, kindRuns)
	} else if err != nil {
		return nil, err
	}
	if err := sc.readSnapshot(); err != nil {
		return nil, err
	}
	if err := sc.readSegments(); err != nil {
		return nil, err
	}
	for _, e := range sc.st.Entries {
		sc.st.Seq = max(sc.st.Seq, e.Seq)
	}
	return sc, nil
}

func asDamage(err error) *Damage {
	var d *Damage
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// readSnapshot reads the snapshot, if any, and settles which segments the
// log must hold from.
func (sc *scan) readSnapshot() error {
	path := filepath.Join(sc.dir, snapName)
	sc.first = 1
	h, hdrOK, size, err := readSnapshot(path, sc.st)
	switch d := asDamage(err); {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if sc.hasMan && sc.man.first > 1 {
			sc.setDamage(&Damage{File: path, Missing: true,
				Reason: fmt.Sprintf("the manifest says segments below %d were compacted into it", sc.man.first)}, kindSnapshot)
			sc.first = sc.man.first
		}
		if sc.hasMan {
			sc.id = sc.man.id
		}
		return nil
	case d != nil:
		sc.setDamage(d, kindSnapshot)
		if data, rerr := os.ReadFile(path); rerr == nil && d.Offset < int64(len(data)) {
			sc.dropped += countRecords(data[max(d.Offset, headerSize):], false)
		}
	default:
		return err
	}
	sc.snapSize = size
	sc.snapEntries = len(sc.st.Entries)
	if !hdrOK {
		if sc.hasMan {
			sc.id, sc.first = sc.man.id, sc.man.first
		}
		return nil
	}
	sc.id, sc.first = h.id, h.a
	sc.st.Seq = h.b
	sc.dup = dedup{snap: sc.st.Entries, above: h.b}
	for _, e := range sc.st.Entries {
		sc.dup.max = max(sc.dup.max, e.Seq)
	}
	if sc.hasMan && sc.man.id != h.id {
		sc.setDamage(&Damage{File: filepath.Join(sc.dir, manifestName), Offset: 16,
			Reason: fmt.Sprintf("manifest of store %016x, the snapshot is of %016x", sc.man.id, h.id)}, kindManifest)
	} else if sc.hasMan && sc.man.first > h.a {
		sc.setDamage(&Damage{File: path, Offset: 24,
			Reason: fmt.Sprintf("the snapshot covers the segments below %d, the manifest says below %d: an older snapshot", h.a, sc.man.first)}, kindSnapshot)
	}
	return nil
}

// required returns the last segment that must exist.
func (sc *scan) required() uint64 {
	switch {
	case sc.hasMan:
		return sc.man.last
	case sc.snapSize >= 0:
		return sc.first // a snapshot's first segment is made durable before the snapshot
	}
	return 0
}

// readSegments reads the log segments in order.
func (sc *scan) readSegments() error {
	nums, err := listSegments(sc.dir)
	if err != nil {
		return err
	}
	if n := len(nums); n > 0 {
		sc.maxNum = nums[n-1]
	}
	last := sc.required()
	want := sc.first
	for i, num := range nums {
		if num < sc.first {
			sc.covered = append(sc.covered, num)
			continue
		}
		if num != want && !sc.cutting {
			sc.setDamage(&Damage{File: filepath.Join(sc.dir, segName(want)), Missing: true,
				Reason: fmt.Sprintf("log segments %d to %d must exist", sc.first, max(last, sc.maxNum))}, kindMissing)
		}
		want = num + 1
		if err := sc.readSegment(num, i == len(nums)-1 && num >= last); err != nil {
			return err
		}
	}
	if want <= last && !sc.cutting {
		sc.setDamage(&Damage{File: filepath.Join(sc.dir, segName(want)), Missing: true,
			Reason: fmt.Sprintf("log segments %d to %d must exist", sc.first, last)}, kindMissing)
	}
	return nil
}

// readSegment reads log segment num. mayTear says it is the newest and no
// later segment must exist, so a damaged end is a write cut short by a
// crash rather than damage.
func (sc *scan) readSegment(num uint64, mayTear bool) error {
	path := filepath.Join(sc.dir, segName(num))
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	size := fi.Size()
	var hb [headerSize]byte
	n, err := io.ReadFull(f, hb[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("store: %w", err)
	}
	h, herr := decodeHeader(hb[:n], walMagic)
	if herr == nil && h.a != num {
		herr = fmt.Errorf("header names segment %d", h.a)
	}
	if herr != nil {
		// A segment's header is fsynced before anything is appended, so a
		// bad header is the trace of a crash during creation only if the
		// file is the newest and holds nothing more.
		if mayTear && size <= headerSize && !sc.cutting {
			sc.tornHdr = num
			return nil
		}
		sc.setDamage(&Damage{File: path, Offset: 0, Reason: "header: " + herr.Error()}, kindSegment)
		sc.dropped += sc.countFrom(f, headerSize, size)
		return nil
	}
	if sc.id == 0 {
		sc.id = h.id
	} else if h.id != sc.id && !sc.cutting {
		sc.setDamage(&Damage{File: path, Offset: 16,
			Reason: fmt.Sprintf("segment of store %016x, not %016x", h.id, sc.id)}, kindSegment)
	}
	if sc.cutting {
		sc.dropped += sc.countFrom(f, headerSize, size)
		return nil
	}
	st := sc.st
	st.Entries = slices.Grow(st.Entries, int(size/100))
	r := newReader(f, headerSize)
	r.zeroEnd = mayTear
	seg := segRead{num: num, size: size, fsize: size}
	for {
		rec, err := r.next()
		if err == io.EOF {
			sc.segs = append(sc.segs, seg)
			return nil
		}
		if err == errZeros {
			sc.zeros = &Damage{File: path, Offset: r.off, Reason: "preallocated space"}
			seg.size = r.off
			sc.segs = append(sc.segs, seg)
			return nil
		}
		if err == nil {
			switch rec.typ {
			case recEntry:
				if !sc.dup.has(rec.a) {
					st.Entries = append(st.Entries, Entry{Seq: rec.a, Line: string(rec.text)})
				}
				seg.records++
				continue
			case recPeer:
				st.Peers[string(rec.text)] = PeerPos{Epoch: rec.a, Seq: rec.b}
				seg.records++
				continue
			default:
				err = &damage{r.off, "end record in a log segment"}
			}
		}
		var d *damage
		if !errors.As(err, &d) {
			return fmt.Errorf("store: read %s: %w", path, err)
		}
		after := sc.countFrom(f, d.off, size)
		if mayTear && after == 0 {
			sc.torn = &Damage{File: path, Offset: d.off, Reason: d.reason}
			seg.size = d.off
			sc.segs = append(sc.segs, seg)
			return nil
		}
		reason := d.reason
		if after > 0 {
			reason = fmt.Sprintf("%s, with %d intact records after it", d.reason, after)
		}
		sc.setDamage(&Damage{File: path, Offset: d.off, Reason: reason}, kindSegment)
		sc.dropped += after
		sc.segs = append(sc.segs, seg)
		return nil
	}
}

// countFrom counts the intact records of f from off to size.
func (sc *scan) countFrom(f *os.File, off, size int64) int {
	if off >= size {
		return 0
	}
	b := make([]byte, size-off)
	n, _ := f.ReadAt(b, off)
	return countRecords(b[:n], false)
}

// next is the number of the segment a start creates.
func (sc *scan) next() uint64 {
	if sc.tornHdr != 0 {
		return sc.tornHdr
	}
	if n := len(sc.segs); n > 0 {
		return sc.segs[n-1].num + 1
	}
	return sc.first
}

// readSnapshot reads the snapshot at path into st. Damage is a *Damage;
// hdrOK says the header was sound.
func readSnapshot(path string, st *State) (h header, hdrOK bool, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, false, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return header{}, false, 0, fmt.Errorf("store: %w", err)
	}
	size = fi.Size()
	bad := func(off int64, format string, a ...any) error {
		return &Damage{File: path, Offset: off, Reason: "snapshot: " + fmt.Sprintf(format, a...)}
	}
	var hb [headerSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return header{}, false, size, bad(0, "header: %v", err)
	}
	h, err = decodeHeader(hb[:], snapMagic)
	if err != nil {
		return header{}, false, size, bad(0, "header: %v", err)
	}
	// Records are about 100 bytes; reserve room to avoid regrowing.
	st.Entries = slices.Grow(st.Entries, int(size/100))
	r := newReader(f, headerSize)
	var peers uint64
	entries := len(st.Entries)
	for {
		off := r.off
		rec, err := r.next()
		if err == io.EOF {
			return h, true, size, bad(off, "no end record: cut short")
		}
		var d *damage
		if errors.As(err, &d) {
			return h, true, size, bad(d.off, "%s", d.reason)
		}
		if err != nil {
			return h, true, size, fmt.Errorf("store: read %s: %w", path, err)
		}
		switch rec.typ {
		case recEntry:
			st.Entries = append(st.Entries, Entry{Seq: rec.a, Line: string(rec.text)})
		case recPeer:
			st.Peers[string(rec.text)] = PeerPos{Epoch: rec.a, Seq: rec.b}
			peers++
		case recEnd:
			if rec.a != uint64(len(st.Entries)-entries) || rec.b != peers {
				return h, true, size, bad(off, "end record counts %d entries and %d peers, found %d and %d",
					rec.a, rec.b, len(st.Entries)-entries, peers)
			}
			if _, err := r.next(); err != io.EOF {
				return h, true, size, bad(r.off, "data after the end record")
			}
			return h, true, size, nil
		}
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

// newID returns a random non-zero store id.
func newID() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		if e := binary.LittleEndian.Uint64(b[:]); e != 0 {
			return e
		}
	}
}
