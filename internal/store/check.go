package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Report is what Check found in a store directory, or what Repair did to
// it. A start of the server finds what Check reports.
type Report struct {
	Dir             string
	InUse           bool  // a server has the directory open: it may change while Check reads
	Manifest        bool  // the directory has a manifest
	Snapshot        bool  // the directory has a snapshot
	SnapshotBytes   int64 // its size
	SnapshotEntries int   // entries read from it (before any damage)
	Segments        []SegmentReport
	Covered         int      // log segments the snapshot covers, which a start deletes
	Temporary       []string // unfinished files left by a crash, which a start deletes
	Entries         int      // entries a start loads (a client may appear more than once)
	Peers           int      // neighbour positions
	Seq             uint64   // highest change number
	Runs            int      // runs recorded
	// Torn is a write cut short at the end of the newest segment, which a
	// start cuts (and logs); it is not damage.
	Torn *Damage
	// Damage is the first damage, which makes a start fail; nil when the
	// directory is sound.
	Damage *Damage
	// Dropped counts the intact records after Damage: what Repair drops.
	Dropped int
	// Cut lists the copies Repair kept of what it cut.
	Cut []string
}

// SegmentReport describes one log segment read before any damage.
type SegmentReport struct {
	Name    string
	Bytes   int64
	Records int // entries and peer marks
}

// Check reads the store directory dir as Open would, without changing
// anything, and reports what a start would find. The error is for a
// directory that cannot be read; damage is in Report.Damage.
func Check(dir string) (Report, error) {
	if _, err := os.Stat(dir); err != nil {
		return Report{}, fmt.Errorf("store: %w", err)
	}
	inUse := false
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err == nil {
		lock, err := lockDir(dir)
		inUse = err != nil
		unlockDir(lock)
	}
	sc, err := scanDir(dir)
	if err != nil {
		return Report{}, err
	}
	r := sc.report()
	r.InUse = inUse
	return r, nil
}

func (sc *scan) report() Report {
	r := Report{
		Dir: sc.dir, Manifest: sc.hasMan, Snapshot: sc.snapSize >= 0, SnapshotBytes: max(sc.snapSize, 0),
		SnapshotEntries: sc.snapEntries, Covered: len(sc.covered), Temporary: sc.tmps,
		Entries: len(sc.st.Entries), Peers: len(sc.st.Peers), Seq: sc.st.Seq, Runs: len(sc.runs),
		Torn: sc.torn, Damage: sc.damage, Dropped: sc.dropped,
	}
	for _, sg := range sc.segs {
		r.Segments = append(r.Segments, SegmentReport{Name: segName(sg.num), Bytes: sg.size, Records: sg.records})
	}
	return r
}

// Repair cuts the history of the store directory dir at its first damage,
// as Open would need to start: everything recorded after the damage is
// dropped, and a copy of each part cut is kept next to it, named
// <file>.cut-<time>. It repeats until the directory is sound. The report
// is that of the first damage (Damage, Dropped: every intact record
// dropped) and of the directory afterwards; Cut lists the copies. A
// sound directory is left alone. Neighbours' positions recorded after the
// damage are dropped with it, so neighbours send again what was lost.
func Repair(dir string) (Report, error) {
	if _, err := os.Stat(dir); err != nil {
		return Report{}, fmt.Errorf("store: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return Report{}, err
	}
	defer unlockDir(lock)
	var (
		first   *Damage
		dropped int
		cut     []string
	)
	for range 16 {
		sc, err := scanDir(dir)
		if err != nil {
			return Report{}, err
		}
		if sc.damage == nil {
			r := sc.report()
			r.Damage, r.Dropped, r.Cut = first, dropped, cut
			return r, nil
		}
		if first == nil {
			first = sc.damage
		}
		dropped += sc.dropped
		c, err := sc.repair()
		cut = append(cut, c...)
		if err != nil {
			return Report{Dir: dir, Damage: first, Dropped: dropped, Cut: cut}, err
		}
	}
	return Report{Dir: dir, Damage: first, Dropped: dropped, Cut: cut}, errors.New("store: repair did not converge")
}

// repair cuts at sc's damage and returns the copies it kept.
func (sc *scan) repair() ([]string, error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var cut []string
	keep := func(path string) error { // moves a whole file aside
		dst, err := cutName(path, stamp)
		if err == nil {
			err = os.Rename(path, dst)
		}
		if err != nil {
			return fmt.Errorf("store: repair: %w", err)
		}
		cut = append(cut, dst)
		return nil
	}
	cutSegments := func(from uint64) error { // moves segments from on aside
		nums, err := listSegments(sc.dir)
		if err != nil {
			return err
		}
		for _, n := range nums {
			if n >= from {
				if err := keep(filepath.Join(sc.dir, segName(n))); err != nil {
					return err
				}
			}
		}
		return nil
	}
	id := sc.id
	if id == 0 {
		id = newID()
	}
	d := sc.damage
	var err error
	switch sc.kind {
	case kindManifest:
		if err = keep(d.File); err == nil {
			last := sc.first - 1
			if n := len(sc.segs); n > 0 {
				last = sc.segs[n-1].num
			}
			err = writeManifest(sc.dir, manifest{id: id, first: sc.first, last: last})
		}
	case kindRuns:
		if err = keep(d.File); err == nil {
			err = writeRuns(sc.dir, sc.runs)
		}
	case kindSnapshot:
		// Keep the snapshot's intact entries, in a new snapshot that
		// covers every segment number used so far; the log after it goes.
		if !d.Missing {
			err = keep(d.File)
		}
		if err == nil {
			err = cutSegments(0)
		}
		if err == nil {
			next := max(sc.maxNum+1, sc.first)
			entries := sc.st.Entries[:sc.snapEntries]
			var seq uint64
			for _, e := range entries {
				seq = max(seq, e.Seq)
			}
			_, err = writeSnapshotFile(sc.dir, header{magic: snapMagic, id: id, a: next, b: seq}, nil,
				slices.Values(entries), func() bool { return false })
			if err == nil {
				err = writeManifest(sc.dir, manifest{id: id, first: next, last: next - 1})
			}
		}
	case kindMissing:
		var want uint64
		if _, err = fmt.Sscanf(filepath.Base(d.File), "wal-%x.log", &want); err == nil {
			if err = cutSegments(want + 1); err == nil {
				err = writeManifest(sc.dir, manifest{id: id, first: sc.first, last: want - 1})
			}
		}
	case kindSegment:
		var num uint64
		if _, err = fmt.Sscanf(filepath.Base(d.File), "wal-%x.log", &num); err != nil {
			break
		}
		last := num
		if d.Offset < headerSize {
			last = num - 1
			err = cutSegments(num)
		} else {
			var c string
			if c, err = cutFile(d.File, d.Offset, stamp); err == nil {
				cut = append(cut, c)
				err = cutSegments(num + 1)
			}
		}
		if err == nil {
			err = writeManifest(sc.dir, manifest{id: id, first: sc.first, last: last})
		}
	default:
		err = fmt.Errorf("store: repair: no repair for %v", d)
	}
	if err == nil {
		err = syncDir(sc.dir)
	}
	return cut, err
}

// cutName returns a name for a copy of path cut at stamp that is not
// taken yet.
func cutName(path, stamp string) (string, error) {
	for i := 0; i < 100; i++ {
		name := path + ".cut-" + stamp
		if i > 0 {
			name += fmt.Sprintf(".%d", i)
		}
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free name for a copy of %s", path)
}

// cutFile copies path from off to its end into a new file, durably, then
// truncates path at off. It returns the copy's name.
func cutFile(path string, off int64, stamp string) (string, error) {
	dst, err := cutName(path, stamp)
	if err != nil {
		return "", fmt.Errorf("store: repair: %w", err)
	}
	src, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("store: repair: %w", err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("store: repair: %w", err)
	}
	_, err = io.Copy(out, io.NewSectionReader(src, off, 1<<62))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return "", fmt.Errorf("store: repair: copy %s: %w", path, err)
	}
	return dst, truncateDurable(path, off)
}
