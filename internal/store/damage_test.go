package store

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// session opens dir, appends the entries seqs from..to (client = seq) and
// closes it: one log segment per session.
func session(t *testing.T, dir string, from, to uint64) {
	t.Helper()
	s, _ := open(t, Options{Dir: dir, Sync: SyncFast})
	for i := from; i <= to; i++ {
		s.Append(i, line(i, i), nil)
	}
	closeStore(t, s)
}

func entries(from, to uint64) []Entry {
	var es []Entry
	for i := from; i <= to; i++ {
		es = append(es, Entry{Seq: i, Line: line(i, i)})
	}
	return es
}

// snapshotDir makes a store whose snapshot holds entries 1..50 and whose
// log holds 51..60 in segment 2.
func snapshotDir(t *testing.T) string {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	m := newModel(0)
	for i := uint64(1); i <= 50; i++ {
		m.set(s, i, i, nil)
	}
	if err := s.Snapshot(m.all()); err != nil {
		t.Fatal(err)
	}
	for i := uint64(51); i <= 60; i++ {
		m.set(s, i, i, nil)
	}
	closeStore(t, s)
	return dir
}

// TestDamageRefused damages a store directory in each way a disk or an
// operator can, and checks that Open refuses with the file and offset,
// that Check reports the same, and that after Repair, Open starts with
// exactly the records before the damage.
func TestDamageRefused(t *testing.T) {
	type damaged struct {
		dir     string
		file    string // the file Open must name
		off     int64  // the offset it must name; -1: a missing file
		want    []Entry
		dropped int
	}
	cases := map[string]func(t *testing.T) damaged{
		"flipped byte mid-segment of the newest segment": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 100)
			path := filepath.Join(dir, segName(1))
			offs, _ := recordOffsets(t, path)
			flipByte(t, path, offs[50]+20)
			return damaged{dir, path, offs[50], entries(1, 50), 49}
		},
		"flipped byte in an older segment": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 50)
			session(t, dir, 51, 100)
			path := filepath.Join(dir, segName(1))
			offs, _ := recordOffsets(t, path)
			flipByte(t, path, offs[25]+12)
			return damaged{dir, path, offs[25], entries(1, 25), 24 + 50}
		},
		"flipped byte in a length field": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 100)
			path := filepath.Join(dir, segName(1))
			offs, _ := recordOffsets(t, path)
			flipByte(t, path, offs[70]+1)
			return damaged{dir, path, offs[70], entries(1, 70), 29}
		},
		"flipped byte in the last record of an older segment": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 50)
			session(t, dir, 51, 60)
			path := filepath.Join(dir, segName(1))
			offs, _ := recordOffsets(t, path)
			flipByte(t, path, offs[49]+30)
			return damaged{dir, path, offs[49], entries(1, 49), 10}
		},
		"older segment cut short": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 50)
			session(t, dir, 51, 60)
			path := filepath.Join(dir, segName(1))
			offs, size := recordOffsets(t, path)
			if err := os.Truncate(path, size-3); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, offs[49], entries(1, 49), 10}
		},
		"middle segment deleted": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 10)
			session(t, dir, 11, 20)
			session(t, dir, 21, 30)
			path := filepath.Join(dir, segName(2))
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, -1, entries(1, 10), 10}
		},
		"newest segment deleted": func(t *testing.T) damaged {
			dir := t.TempDir()
			session(t, dir, 1, 10)
			session(t, dir, 11, 20)
			path := filepath.Join(dir, segName(2))
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, -1, entries(1, 10), 0}
		},
		"all segments deleted with a snapshot present": func(t *testing.T) damaged {
			dir := snapshotDir(t)
			nums, _ := listSegments(dir)
			for _, n := range nums {
				if err := os.Remove(filepath.Join(dir, segName(n))); err != nil {
					t.Fatal(err)
				}
			}
			return damaged{dir, filepath.Join(dir, segName(2)), -1, entries(1, 50), 0}
		},
		"snapshot cut short": func(t *testing.T) damaged {
			dir := snapshotDir(t)
			path := filepath.Join(dir, snapName)
			offs, size := recordOffsets(t, path)
			if err := os.Truncate(path, size-5); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, offs[len(offs)-1], entries(1, 50), 10}
		},
		"snapshot cut in half": func(t *testing.T) damaged {
			dir := snapshotDir(t)
			path := filepath.Join(dir, snapName)
			offs, _ := recordOffsets(t, path)
			var st State
			if _, _, _, err := readSnapshot(path, &st); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, offs[20]+7); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, offs[20], st.Entries[:20], 10}
		},
		"snapshot deleted": func(t *testing.T) damaged {
			dir := snapshotDir(t)
			path := filepath.Join(dir, snapName)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return damaged{dir, path, -1, nil, 10}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			d := build(t)
			where := d.file
			if d.off >= 0 {
				where = fmt.Sprintf("%s is damaged at offset %d", d.file, d.off)
			} else {
				where = d.file + " is missing"
			}
			before := files(t, d.dir)
			_, _, err := Open(Options{Dir: d.dir})
			if err == nil || !strings.Contains(err.Error(), where) {
				t.Fatalf("Open = %v, want an error saying %q", err, where)
			}
			if got := files(t, d.dir); !slices.Equal(got, before) && !slices.Equal(got, append([]string{"LOCK"}, before...)) {
				t.Fatalf("a refused Open changed the directory: %v, was %v", got, before)
			}
			r, err := Check(d.dir)
			if err != nil {
				t.Fatal(err)
			}
			if r.Damage == nil || r.Damage.File != d.file || (d.off >= 0 && r.Damage.Offset != d.off) || r.Damage.Missing != (d.off < 0) {
				t.Fatalf("Check found %v, want %s", r.Damage, where)
			}
			if r.Dropped != d.dropped {
				t.Errorf("Check: repair would drop %d records, want %d", r.Dropped, d.dropped)
			}
			r, err = Repair(d.dir)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if r.Dropped != d.dropped || r.Damage == nil {
				t.Errorf("Repair dropped %d records (damage %v), want %d", r.Dropped, r.Damage, d.dropped)
			}
			for _, c := range r.Cut {
				if !strings.HasPrefix(c, d.dir+string(os.PathSeparator)) || !strings.Contains(c, ".cut-") {
					t.Errorf("copy of the cut %q", c)
				}
				if _, err := os.Stat(c); err != nil {
					t.Error(err)
				}
			}
			if d.off >= 0 && len(r.Cut) == 0 {
				t.Error("Repair kept no copy of what it cut")
			}
			if r, err := Check(d.dir); err != nil || r.Damage != nil {
				t.Fatalf("Check after Repair: %v, %v", r.Damage, err)
			}
			s, st := open(t, Options{Dir: d.dir})
			if got, want := merge(st.Entries), merge(d.want); !maps.Equal(got, want) || len(st.Entries) != len(d.want) {
				t.Errorf("after Repair: %d entries (%d clients), want exactly the %d before the damage", len(st.Entries), len(got), len(d.want))
			}
			if len(st.Peers) != 0 {
				t.Errorf("peers %v", st.Peers)
			}
			// The repaired store works, and stays sound.
			done := make(chan error, 1)
			s.Append(1000, line(1000, 1000), done)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			closeStore(t, s)
			s, st = open(t, Options{Dir: d.dir})
			closeStore(t, s)
			if len(st.Entries) != len(d.want)+1 {
				t.Errorf("second open after Repair: %d entries, want %d", len(st.Entries), len(d.want)+1)
			}
		})
	}
}

// TestTornTailChecked: a torn write at the end of the newest segment is
// no damage: Check reports it as what a start cuts, Open cuts it and logs
// the file and offset.
func TestTornTailChecked(t *testing.T) {
	dir := t.TempDir()
	session(t, dir, 1, 20)
	path := filepath.Join(dir, segName(1))
	offs, size := recordOffsets(t, path)
	if err := os.Truncate(path, size-4); err != nil {
		t.Fatal(err)
	}
	r, err := Check(dir)
	if err != nil || r.Damage != nil || r.Torn == nil || r.Torn.File != path || r.Torn.Offset != offs[19] || r.Entries != 19 {
		t.Fatalf("Check = %+v, %v", r, err)
	}
	var logs logBuffer
	s, st := open(t, Options{Dir: dir, Logger: logs.logger()})
	defer closeStore(t, s)
	if !slices.Equal(st.Entries, entries(1, 19)) {
		t.Errorf("recovered %d entries", len(st.Entries))
	}
	if want := fmt.Sprintf("level=WARN msg=\"store: cutting a torn write at the end of the log\" file=%s offset=%d", path, offs[19]); !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}

// TestRepairSoundDirectory: Repair leaves a sound directory alone.
func TestRepairSoundDirectory(t *testing.T) {
	dir := t.TempDir()
	session(t, dir, 1, 20)
	before := files(t, dir)
	r, err := Repair(dir)
	if err != nil || r.Damage != nil || r.Dropped != 0 || len(r.Cut) != 0 || r.Entries != 20 {
		t.Fatalf("Repair = %+v, %v", r, err)
	}
	if got := files(t, dir); !slices.Equal(got, before) {
		t.Errorf("files %v, were %v", got, before)
	}
}

// TestRepairRefusesOpenStore: Repair does not touch a directory in use.
func TestRepairRefusesOpenStore(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if _, err := Repair(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Repair of an open store = %v", err)
	}
	if r, err := Check(dir); err != nil || !r.InUse {
		t.Fatalf("Check of an open store: in use %v, %v", r.InUse, err)
	}
}
