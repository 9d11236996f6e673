package store

import (
	"testing"
	"time"
)

// TestUnwaitedBatchesSyncLater: in SyncAlways mode entries nobody waits
// for (Append with a nil done, no Notify) cost no write of their own: they
// wait in memory for a Notify or an Append with done, which writes and
// fsyncs them with it in one batch; a peer mark is written at once but not
// fsynced.
func TestUnwaitedBatchesSyncLater(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), FastInterval: time.Hour})
	defer closeStore(t, s)
	for i := uint64(1); i <= 10; i++ {
		s.Append(i, line(i, i), nil)
	}
	s.mu.Lock()
	due, kicked := s.lazyKick, len(s.kick) > 0
	s.mu.Unlock()
	if !due || kicked {
		t.Fatalf("unwaited entries woke the writer (kick pending %v) instead of waiting for FastInterval (due %v)", kicked, due)
	}
	if st := s.Stats(); st.WrittenSeq != 0 || st.Batches != 0 {
		t.Fatalf("unwaited entries written at once: written seq %d, %d batches", st.WrittenSeq, st.Batches)
	}
	done := make(chan error, 1)
	s.Notify(done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Fsyncs != 1 || st.Batches != 1 || st.DurableSeq != 10 {
		t.Fatalf("after Notify: %d fsyncs, %d batches, durable seq %d; want 1, 1 and 10", st.Fsyncs, st.Batches, st.DurableSeq)
	}
	s.Append(11, line(11, 11), nil)
	s.MarkPeer("Hands", PeerPos{Epoch: 1, Seq: 7})
	waitFor(t, 10*time.Second, "the mark written", func() bool { return s.Stats().WrittenSeq == 11 })
	s.Append(12, line(12, 12), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.DurableSeq != 12 {
		t.Fatalf("an append answered before it was durable: durable seq %d", st.DurableSeq)
	}
}

// TestUnwaitedBytesWritten: entries nobody waits for are written without
// waiting for FastInterval once lazyBytes of them are buffered (those
// appended after the writer took them wait again).
func TestUnwaitedBytesWritten(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), FastInterval: time.Hour})
	defer closeStore(t, s)
	var n uint64
	for size := 0; size <= lazyBytes; size += len(line(n, n)) {
		n++
		s.Append(n, line(n, n), nil)
	}
	waitFor(t, 10*time.Second, "the buffered entries written", func() bool { return s.Stats().WrittenSeq > 0 })
}

// TestUnwaitedBatchesSyncWithinInterval: entries nobody waits for are
// written and fsynced within FastInterval, and a Notify after that is
// answered at once.
func TestUnwaitedBatchesSyncWithinInterval(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), FastInterval: time.Millisecond})
	defer closeStore(t, s)
	for i := uint64(1); i <= 5; i++ {
		s.Append(i, line(i, i), nil)
	}
	waitFor(t, 10*time.Second, "the syncer's fsync", func() bool { return s.Stats().DurableSeq == 5 })
	done := make(chan error, 1)
	s.Notify(done)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("Notify after the syncer's fsync was not answered at once")
	}
}

// TestCloseSyncsUnwaitedBatches: what was written lazily is durable after
// Close and comes back at Open.
func TestCloseSyncsUnwaitedBatches(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir, FastInterval: time.Hour})
	for i := uint64(1); i <= 5; i++ {
		s.Append(i, line(i, i), nil)
	}
	closeStore(t, s)
	if st := s.Stats(); st.DurableSeq != 5 {
		t.Fatalf("durable seq %d after Close, want 5", st.DurableSeq)
	}
	s, st := open(t, Options{Dir: dir})
	defer closeStore(t, s)
	if len(st.Entries) != 5 {
		t.Fatalf("recovered %d entries, want 5", len(st.Entries))
	}
}
