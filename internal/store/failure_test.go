package store

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// faults makes the log segments fail like a full or broken disk.
type faults struct {
	mu        sync.Mutex
	writeErr  error // writes store half their bytes, then fail with it
	syncErr   error // fsyncs fail with it, and lose what was written since the last good one
	writes    int   // failed writes
	syncFails int   // failed fsyncs
	// flapWrites and flapSyncs, if set, make writes (fsyncs) fail for one
	// stretch of that many calls in five, with ENOSPC (EIO).
	flapWrites, flapSyncs int
	nWrites, nSyncs       int
}

// flapLocked applies flapWrites and flapSyncs before a call.
func (fs *faults) flapLocked(write bool) {
	if write && fs.flapWrites > 0 {
		fs.nWrites++
		fs.writeErr = nil
		if (fs.nWrites/fs.flapWrites)%5 == 4 {
			fs.writeErr = syscall.ENOSPC
		}
	}
	if !write && fs.flapSyncs > 0 {
		fs.nSyncs++
		fs.syncErr = nil
		if (fs.nSyncs/fs.flapSyncs)%5 == 4 {
			fs.syncErr = syscall.EIO
		}
	}
}

func (fs *faults) set(write, sync error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.writeErr, fs.syncErr = write, sync
}

func (fs *faults) wrap(f File) File {
	return &faultFile{File: f, fs: fs, size: headerSize, synced: headerSize}
}

// faultFile is a log segment on a failing disk. The writer and the syncer
// use it concurrently: fs.mu guards size and synced.
type faultFile struct {
	File
	fs     *faults
	size   int64 // bytes written
	synced int64 // size at the last good fsync
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.flapLocked(true)
	if err := f.fs.writeErr; err != nil {
		f.fs.writes++
		n, _ := f.File.Write(p[:len(p)/2])
		f.size += int64(n)
		return n, err
	}
	n, err := f.File.Write(p)
	f.size += int64(n)
	return n, err
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.flapLocked(false)
	if err := f.fs.syncErr; err != nil {
		f.fs.syncFails++
		// As after a failed writeback: what was written since the last
		// good fsync is partly gone from the file.
		f.File.Truncate(f.synced + (f.size-f.synced)/3)
		return err
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.synced = f.size
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	f.size, f.synced = size, min(f.synced, size)
	return nil
}

// TestFailClosed: while writes or fsyncs fail, no append is acknowledged
// and Health says why; once the disk works again the store cuts what was
// partly written, writes everything again and acknowledges again by
// itself; a reopen finds every acknowledged entry and no partial record.
func TestFailClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  SyncMode
		write error
		sync  error
		want  string
	}{
		{"disk full on write", SyncAlways, syscall.ENOSPC, nil, "no space left on device"},
		{"fsync fails", SyncAlways, nil, syscall.EIO, "input/output error"},
		{"fast: disk full on write", SyncFast, syscall.ENOSPC, nil, "no space left on device"},
		{"fast: fsync fails", SyncFast, nil, syscall.EIO, "input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs logBuffer
			fs := &faults{}
			o := Options{Dir: dir, Sync: tc.mode, FastInterval: time.Millisecond, Logger: logs.logger(),
				WrapFile: fs.wrap, retryMin: time.Millisecond, retryMax: 5 * time.Millisecond}
			s, _ := open(t, o)
			m := newModel(0)
			acked := map[uint64]bool{}
			appendOne := func(i uint64) error {
				done := make(chan error, 1)
				seq := m.set(s, i, i, done)
				err := <-done
				if err == nil {
					acked[seq] = true
				}
				return err
			}
			for i := uint64(1); i <= 10; i++ {
				if err := appendOne(i); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Health(); err != nil {
				t.Fatalf("Health of a working store: %v", err)
			}

			fs.set(tc.write, tc.sync)
			// In fast mode an append is answered once written, so a failed
			// fsync shows at the next append or Notify.
			var failed error
			for i := uint64(11); i <= 40 && failed == nil; i++ {
				failed = appendOne(i)
				if tc.mode == SyncFast && failed == nil {
					done := make(chan error, 1)
					s.Notify(done)
					if err := <-done; err != nil && tc.sync == nil {
						t.Fatalf("Notify failed while appends succeed: %v", err)
					}
				}
			}
			waitFor(t, 5*time.Second, "the store to report the failure", func() bool { return s.Health() != nil })
			if failed == nil {
				failed = appendOne(41)
			}
			if failed == nil || !strings.Contains(failed.Error(), tc.want) {
				t.Fatalf("append while the disk fails answered %v, want %q", failed, tc.want)
			}
			if h := s.Health(); h == nil || !strings.Contains(h.Error(), tc.want) || !strings.Contains(h.Error(), "retrying") {
				t.Fatalf("Health = %v", h)
			}
			for i := uint64(50); i < 60; i++ {
				if err := appendOne(i); err == nil {
					t.Fatalf("append %d acknowledged while the disk fails", i)
				}
			}
			done := make(chan error, 1)
			s.Notify(done)
			if err := <-done; err == nil {
				t.Fatal("Notify succeeded while the disk fails")
			}
			s.MarkPeer("Hands", PeerPos{Epoch: 5, Seq: 77})
			waitFor(t, 5*time.Second, "several retries", func() bool { return s.Stats().Errors >= 3 })

			fs.set(nil, nil)
			waitFor(t, 5*time.Second, "the store to resume", func() bool { return s.Health() == nil })
			done = make(chan error, 1)
			s.Notify(done)
			if err := <-done; err != nil {
				t.Fatalf("Notify after the disk recovered: %v", err)
			}
			for i := uint64(60); i < 70; i++ {
				if err := appendOne(i); err != nil {
					t.Fatalf("append %d after the disk recovered: %v", i, err)
				}
			}
			if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
				t.Errorf("%d error lines, want 1 (at most one a minute):\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), "store: writing again") {
				t.Errorf("resumption not logged:\n%s", logs.String())
			}
			closeStore(t, s)

			r, err := Check(dir)
			if err != nil || r.Damage != nil || r.Torn != nil {
				t.Fatalf("Check after the failure: %+v, %v", r, err)
			}
			var logs2 logBuffer
			s, st := open(t, Options{Dir: dir, Logger: logs2.logger()})
			defer closeStore(t, s)
			if strings.Contains(logs2.String(), "WARN") {
				t.Errorf("reopen warned:\n%s", logs2.String())
			}
			got := map[uint64]bool{}
			for _, e := range st.Entries {
				got[e.Seq] = true
			}
			for seq := range acked {
				if !got[seq] {
					t.Errorf("acknowledged seq %d lost", seq)
				}
			}
			// Entries refused while failing were kept and written later:
			// the table holds them, so the log must too.
			if merged := merge(st.Entries); len(merged) != len(m.m) {
				t.Errorf("recovered %d clients, want %d", len(merged), len(m.m))
			}
			if want := map[string]PeerPos{"Hands": {5, 77}}; st.Peers["Hands"] != want["Hands"] {
				t.Errorf("peers %v, want %v", st.Peers, want)
			}
			if !slices.IsSortedFunc(st.Entries, func(a, b Entry) int { return int(a.Seq) - int(b.Seq) }) {
				t.Error("entries out of order")
			}
		})
	}
}

// TestCloseWhileFailing: Close gives up after one more attempt, answers
// everything, and reports the failure; what was acknowledged is kept.
func TestCloseWhileFailing(t *testing.T) {
	dir := t.TempDir()
	fs := &faults{}
	s, _ := open(t, Options{Dir: dir, WrapFile: fs.wrap})
	done := make(chan error, 1)
	s.Append(1, line(1, 1), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fs.set(syscall.ENOSPC, nil)
	s.Append(2, line(2, 2), done)
	if err := <-done; err == nil {
		t.Fatal("append acknowledged on a full disk")
	}
	if err := s.Close(); err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("Close = %v, want the write error", err)
	}
	if !errors.Is(s.Err(), syscall.ENOSPC) {
		t.Errorf("Err = %v", s.Err())
	}
	// The half-written record is at the end of the newest segment: a
	// torn write, which the next start cuts.
	s, st := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if !slices.Equal(st.Entries, []Entry{{1, line(1, 1)}}) {
		t.Errorf("recovered %v", st.Entries)
	}
}

// TestSnapshotWhileFailing: a snapshot is refused while the log fails.
func TestSnapshotWhileFailing(t *testing.T) {
	fs := &faults{}
	s, _ := open(t, Options{Dir: t.TempDir(), WrapFile: fs.wrap, retryMin: time.Hour})
	fs.set(syscall.ENOSPC, nil)
	done := make(chan error, 1)
	s.Append(1, line(1, 1), done)
	<-done
	if err := s.Snapshot(func(func(Entry) bool) {}); err == nil {
		t.Error("Snapshot succeeded on a failing store")
	}
	fs.set(nil, nil)
	if err := s.Close(); err != nil {
		t.Errorf("Close after the disk recovered: %v", err)
	}
	if _, err := os.Stat(dirOf(s)); err != nil {
		t.Error(err)
	}
}

func dirOf(s *Store) string { return s.dir }

// TestFailOverflow: past MaxPending, a failing store drops what it kept
// in memory; once the disk works it has a snapshot written before it
// acknowledges anything, and a reopen finds every client of the table and
// the latest peer positions.
func TestFailOverflow(t *testing.T) {
	dir := t.TempDir()
	fs := &faults{}
	m := newModel(0)
	var s *Store
	o := Options{Dir: dir, WrapFile: fs.wrap, MaxPending: 4 << 10, retryMin: time.Millisecond, retryMax: 5 * time.Millisecond,
		Compact: func() {
			if err := s.Snapshot(m.all()); err != nil {
				t.Errorf("Snapshot: %v", err)
			}
		}}
	var logs logBuffer
	o.Logger = logs.logger()
	s, _ = open(t, o)
	done := make(chan error, 1)
	for i := uint64(1); i <= 10; i++ {
		m.set(s, i, i, done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	fs.set(syscall.ENOSPC, nil)
	for i := uint64(11); i <= 300; i++ { // about 30 KiB: past the bound
		m.set(s, i, i, done)
		if err := <-done; err == nil {
			t.Fatalf("append %d acknowledged on a full disk", i)
		}
		if i%50 == 0 {
			s.MarkPeer("Hands", PeerPos{Epoch: 3, Seq: i})
		}
	}
	if !strings.Contains(logs.String(), "passed the bound") {
		t.Fatalf("overflow not logged:\n%s", logs.String())
	}
	fs.set(nil, nil)
	// Health clears and the snapshot is counted in either order.
	waitFor(t, 10*time.Second, "the store to write a snapshot and resume", func() bool { return s.Health() == nil && s.Stats().Snapshots > 0 })
	if st := s.Stats(); st.Snapshots != 1 {
		t.Errorf("%d snapshots, want 1", st.Snapshots)
	}
	for i := uint64(301); i <= 310; i++ {
		m.set(s, i, i, done)
		if err := <-done; err != nil {
			t.Fatalf("append %d after the snapshot: %v", i, err)
		}
	}
	s.MarkPeer("Hands", PeerPos{Epoch: 3, Seq: 310})
	closeStore(t, s)
	s, st := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if got := merge(st.Entries); !maps.Equal(got, m.m) {
		t.Errorf("recovered %d clients, want %d", len(got), len(m.m))
	}
	if st.Peers["Hands"] != (PeerPos{3, 310}) {
		t.Errorf("peers %v", st.Peers)
	}
}
