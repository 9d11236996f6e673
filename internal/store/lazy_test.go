package store

import (
	"testing"
	"time"
)

// TestUnwaitedBatchesSyncLater: in SyncAlways mode a batch nobody waits
// for (Append with a nil done, no Notify) is written at once but not
// fsynced; a Notify, or an Append with done, then fsyncs it and
// everything before it.
func TestUnwaitedBatchesSyncLater(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), FastInterval: time.Hour})
	defer closeStore(t, s)
	// The syncer's first fsync comes at once, the next an hour later.
	s.Append(1, line(1, 1), nil)
	waitFor(t, 10*time.Second, "the syncer's first fsync", func() bool { return s.Stats().DurableSeq == 1 })
	for i := uint64(2); i <= 10; i++ {
		s.Append(i, line(i, i), nil)
	}
	s.MarkPeer("Hands", PeerPos{Epoch: 1, Seq: 7})
	waitFor(t, 10*time.Second, "the entries written", func() bool { return s.Stats().WrittenSeq == 10 })
	if st := s.Stats(); st.Fsyncs != 1 || st.DurableSeq != 1 {
		t.Fatalf("unwaited batches fsynced at once: %d fsyncs, durable seq %d", st.Fsyncs, st.DurableSeq)
	}
	done := make(chan error, 1)
	s.Notify(done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Fsyncs != 2 || st.DurableSeq != 10 {
		t.Fatalf("after Notify: %d fsyncs, durable seq %d; want 2 and 10", st.Fsyncs, st.DurableSeq)
	}
	s.Append(11, line(11, 11), nil)
	s.Append(12, line(12, 12), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.DurableSeq != 12 {
		t.Fatalf("an append answered before it was durable: durable seq %d", st.DurableSeq)
	}
}

// TestUnwaitedBatchesSyncWithinInterval: the syncer fsyncs a batch nobody
// waits for within FastInterval, and a Notify after that is answered at
// once.
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
