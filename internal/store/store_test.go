package store

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var modes = []SyncMode{SyncAlways, SyncFast}

func TestRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s, st := open(t, Options{Dir: dir, Sync: mode})
			if len(st.Runs) != 1 || st.Seq != 0 || len(st.Entries) != 0 || len(st.Peers) != 0 {
				t.Fatalf("fresh state = %+v", st)
			}
			var want []Entry
			peers := map[string]PeerPos{}
			var last chan error
			for i := uint64(1); i <= 1000; i++ {
				e := Entry{Seq: i, Line: line(i%300, i)}
				want = append(want, e)
				var done chan error
				if i%2 == 0 {
					done = make(chan error, 1)
					last = done
				}
				s.Append(e.Seq, e.Line, done)
				if i%100 == 0 {
					name := fmt.Sprintf("peer%d", i%3)
					peers[name] = PeerPos{Epoch: 42 + i%3, Seq: i}
					s.MarkPeer(name, peers[name])
				}
			}
			<-last
			closeStore(t, s)

			for range 2 {
				s, st = open(t, Options{Dir: dir, Sync: mode})
				if st.Seq != 1000 {
					t.Errorf("seq = %d, want 1000", st.Seq)
				}
				if !slices.Equal(st.Entries, want) {
					t.Errorf("entries differ: got %d, want %d", len(st.Entries), len(want))
				}
				if !maps.Equal(st.Peers, peers) {
					t.Errorf("peers = %v, want %v", st.Peers, peers)
				}
				closeStore(t, s)
			}
		})
	}
}

// TestRuns: every Open starts a run with a fresh epoch, after the change
// numbers recovered, and keeps the earlier ones.
func TestRuns(t *testing.T) {
	dir := t.TempDir()
	s, st := open(t, Options{Dir: dir})
	if len(st.Runs) != 1 || st.Runs[0].Epoch == 0 || st.Runs[0].Start != 1 {
		t.Fatalf("runs of a fresh store: %+v", st.Runs)
	}
	first := st.Runs[0]
	done := make(chan error, 1)
	s.Append(1, line(1, 1), nil)
	s.Append(2, line(2, 1), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s, st = open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if len(st.Runs) != 2 || st.Runs[0] != first || st.Runs[1].Start != 3 || st.Runs[1].Epoch == first.Epoch || st.Runs.Current() != st.Runs[1].Epoch {
		t.Fatalf("runs after a restart: %+v", st.Runs)
	}
	if from, ok := st.Runs.DeltaFrom(first.Epoch, 10); !ok || from != 2 {
		t.Errorf("DeltaFrom(first run, 10) = %d, %v; want 2: changes of a run past the next run's start may be lost", from, ok)
	}
	if from, ok := st.Runs.DeltaFrom(st.Runs.Current(), 10); !ok || from != 10 {
		t.Errorf("DeltaFrom(current, 10) = %d, %v", from, ok)
	}
	if _, ok := st.Runs.DeltaFrom(12345, 1); ok {
		t.Error("DeltaFrom of an unknown epoch succeeded")
	}
}

func TestCreatesParents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "Goloman")
	s, _ := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	for _, name := range []string{segName(1), manifestName, runsName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func TestDoneAfterFsync(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir()})
	defer closeStore(t, s)
	for i := uint64(1); i <= 20; i++ {
		done := make(chan error, 1)
		s.Append(i, line(i, i), done)
		<-done
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.DurableSeq < i || st.Fsyncs == 0 {
			t.Fatalf("done closed before fsync: seq %d, stats %+v", i, st)
		}
	}
}

func TestNotifyAfterEarlierAppends(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir()})
	for i := uint64(1); i <= 20; i++ {
		s.Append(i, line(i, i), nil)
		done := make(chan error, 1)
		s.Notify(done)
		<-done
		if st := s.Stats(); st.DurableSeq < i {
			t.Fatalf("Notify closed before seq %d was durable: stats %+v", i, st)
		}
	}
	closeStore(t, s)
	done := make(chan error, 1)
	s.Notify(done) // after Close: answers at once
	if err := <-done; err != nil {
		t.Errorf("Notify after Close, with everything saved: %v", err)
	}
}

func TestFastSyncFollows(t *testing.T) {
	synced := make(chan struct{}, 1)
	o := Options{Dir: t.TempDir(), Sync: SyncFast, FastInterval: time.Millisecond,
		beforeSync: func() {
			select {
			case synced <- struct{}{}:
			default:
			}
		}}
	s, _ := open(t, o)
	done := make(chan error, 1)
	s.Append(1, line(1, 1), done)
	<-done
	if st := s.Stats(); st.WrittenSeq < 1 {
		t.Fatalf("done closed before write: %+v", st)
	}
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("no fsync followed the write")
	}
	closeStore(t, s)
	if st := s.Stats(); st.DurableSeq != 1 {
		t.Errorf("after Close: durable seq %d, want 1", st.DurableSeq)
	}
}

// TestGroupCommit holds the first fsync until every appender has appended:
// they must then all share one more fsync.
func TestGroupCommit(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	o := Options{Dir: t.TempDir(), beforeSync: func() { once.Do(func() { <-gate }) }}
	s, _ := open(t, o)
	m := newModel(0)
	const n = 64
	var appended, finished sync.WaitGroup
	appended.Add(n)
	finished.Add(n)
	for i := range n {
		go func() {
			defer finished.Done()
			done := make(chan error, 1)
			m.set(s, uint64(i), 1, done)
			appended.Done()
			<-done
		}()
	}
	appended.Wait()
	close(gate)
	finished.Wait()
	st := s.Stats()
	t.Logf("appends %d, fsyncs %d", st.Appends, st.Fsyncs)
	if st.Appends != n || st.Fsyncs > 2 || st.DurableSeq != n {
		t.Errorf("stats %+v: want %d appends in at most 2 fsyncs", st, n)
	}
	closeStore(t, s)
}

// TestConcurrentAppends appends from many goroutines without holding any
// fsync back, and checks that everything is there.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	m := newModel(0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				done := make(chan error, 1)
				m.set(s, uint64(g*1000+i), 1, done)
				<-done
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("appends %d, fsyncs %d, %.1f appends per fsync", st.Appends, st.Fsyncs, float64(st.Appends)/float64(st.Fsyncs))
	closeStore(t, s)
	s, rec := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if got := merge(rec.Entries); !maps.Equal(got, m.m) {
		t.Errorf("recovered %d clients, want %d", len(got), len(m.m))
	}
}

func TestTruncatedTail(t *testing.T) {
	src := t.TempDir()
	s, _ := open(t, Options{Dir: src})
	var want []Entry
	for i := uint64(1); i <= 20; i++ {
		want = append(want, Entry{Seq: i, Line: line(i, i)})
		s.Append(i, line(i, i), nil)
	}
	closeStore(t, s)
	seg := filepath.Join(src, segName(1))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	offs, size := recordOffsets(t, seg)
	if len(offs) != 20 || size != int64(len(data)) {
		t.Fatalf("%d records in %d bytes", len(offs), size)
	}
	lastOff := offs[len(offs)-1]

	for cut := lastOff; cut < size; cut++ {
		dir := filepath.Join(t.TempDir(), "s")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, segName(1))
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		s, st := open(t, Options{Dir: dir, Logger: logs.logger()})
		if !slices.Equal(st.Entries, want[:19]) || st.Seq != 19 {
			t.Fatalf("cut at %d: recovered %d entries, seq %d", cut, len(st.Entries), st.Seq)
		}
		warned := strings.Contains(logs.String(), "level=WARN msg=\"store: cutting a torn write at the end of the log\" file="+path+
			fmt.Sprintf(" offset=%d dropped_bytes=%d", lastOff, cut-lastOff))
		if warned != (cut > lastOff) {
			t.Fatalf("cut at %d: warned=%v; log:\n%s", cut, warned, logs.String())
		}
		// New appends go after the valid prefix and survive.
		done := make(chan error, 1)
		s.Append(20, line(20, 20), done)
		<-done
		closeStore(t, s)
		if fi, err := os.Stat(path); err != nil || fi.Size() != lastOff {
			t.Fatalf("cut at %d: segment not truncated to %d: %v %v", cut, lastOff, fi.Size(), err)
		}
		logs = logBuffer{}
		s, st = open(t, Options{Dir: dir, Logger: logs.logger()})
		if !slices.Equal(st.Entries, want) {
			t.Fatalf("cut at %d: after reopen %d entries", cut, len(st.Entries))
		}
		if strings.Contains(logs.String(), "WARN") {
			t.Fatalf("cut at %d: warning on second open:\n%s", cut, logs.String())
		}
		closeStore(t, s)
	}
}

func TestTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	s.Append(1, line(1, 1), nil)
	closeStore(t, s)
	// A crash while Open created segment 2, before the manifest named it.
	hdr := header{magic: walMagic, id: 7, a: 2}.encode()
	man, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	for cut := range headerSize {
		if err := os.WriteFile(filepath.Join(dir, manifestName), man, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, segName(2))
		if err := os.WriteFile(path, hdr[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		s, st := open(t, Options{Dir: dir, Logger: logs.logger()})
		if len(st.Entries) != 1 {
			t.Fatalf("cut %d: %d entries", cut, len(st.Entries))
		}
		if !strings.Contains(logs.String(), "creation was cut short") {
			t.Fatalf("cut %d: no warning:\n%s", cut, logs.String())
		}
		closeStore(t, s)
		// Segment 2 was recreated by Open; remove it for the next round.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func recordOffsetsBytes(t *testing.T, b []byte) ([]int64, int64) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return recordOffsets(t, path)
}

func TestSnapshotThenAppend(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	m := newModel(0)
	for i := range 500 {
		m.set(s, uint64(i%50), uint64(i), nil)
	}
	s.MarkPeer("Hands", PeerPos{Epoch: 1, Seq: 77})
	if err := s.Snapshot(m.all()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"LOCK", manifestName, runsName, snapName, segName(2)}) {
		t.Errorf("files after snapshot: %v", got)
	}
	for i := range 100 {
		m.set(s, uint64(i%70), uint64(1000+i), nil)
	}
	s.MarkPeer("Hands", PeerPos{Epoch: 1, Seq: 99})
	st := s.Stats()
	if st.Snapshots != 1 || st.SnapshotSize == 0 || st.Segments != 1 {
		t.Errorf("stats %+v", st)
	}
	closeStore(t, s)

	for range 2 {
		s, rec := open(t, Options{Dir: dir})
		if got := merge(rec.Entries); !maps.Equal(got, m.m) {
			t.Errorf("recovered %d clients, want %d", len(got), len(m.m))
		}
		if len(rec.Entries) != 150 {
			t.Errorf("recovered %d entries, want 50 from the snapshot and 100 from the log", len(rec.Entries))
		}
		if rec.Seq != m.seq {
			t.Errorf("seq %d, want %d", rec.Seq, m.seq)
		}
		if want := map[string]PeerPos{"Hands": {1, 99}}; !maps.Equal(rec.Peers, want) {
			t.Errorf("peers %v, want %v", rec.Peers, want)
		}
		closeStore(t, s)
	}
}

func TestSnapshotConcurrentAppend(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, Options{Dir: dir, Sync: mode})
			m := newModel(0)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 300 {
						done := make(chan error, 1)
						m.set(s, uint64((g*300+i)%200), uint64(g*1000+i), done)
						<-done
					}
				})
			}
			wg.Go(func() {
				for range 5 {
					if err := s.Snapshot(m.all()); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Wait()
			closeStore(t, s)
			s, rec := open(t, Options{Dir: dir})
			defer closeStore(t, s)
			if got := merge(rec.Entries); !maps.Equal(got, m.m) {
				t.Errorf("recovered %d clients, want %d", len(got), len(m.m))
			}
			seqs := map[uint64]bool{}
			for _, e := range rec.Entries {
				if seqs[e.Seq] {
					t.Errorf("seq %d recovered twice", e.Seq)
				}
				seqs[e.Seq] = true
			}
		})
	}
}

func TestAutoCompact(t *testing.T) {
	dir := t.TempDir()
	m := newModel(0)
	compacted := make(chan error, 10)
	var s *Store
	o := Options{Dir: dir, Sync: SyncFast, CompactBytes: 16 << 10, Compact: func() {
		compacted <- s.Snapshot(m.all())
	}}
	s, _ = open(t, o)
	for i := range 400 { // about 40 KiB
		m.set(s, uint64(i%100), uint64(i), nil)
	}
	select {
	case err := <-compacted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Compact not called")
	}
	closeStore(t, s)
	if st := s.Stats(); st.Compactions == 0 || st.Snapshots == 0 {
		t.Errorf("stats %+v", st)
	}
	s, rec := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if got := merge(rec.Entries); !maps.Equal(got, m.m) {
		t.Errorf("recovered %d clients, want %d", len(got), len(m.m))
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	if _, _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("second Open of one directory succeeded")
	}
	closeStore(t, s)
	s, _ = open(t, Options{Dir: dir})
	closeStore(t, s)
}

func TestAfterClose(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir()})
	closeStore(t, s)
	done := make(chan error, 1)
	s.Append(1, line(1, 1), done)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close answered %v, want ErrClosed", err)
	}
	if err := s.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", err)
	}
	if err := s.Snapshot(func(func(Entry) bool) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Snapshot = %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}
