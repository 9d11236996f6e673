package store

import (
	"sync"
	"testing"
	"time"
)

// benchAppend appends from many goroutines, each waiting for its done
// channel as a server does before replying, and reports appends per second
// and per fsync.
func benchAppend(b *testing.B, mode SyncMode) {
	s, _ := open(b, Options{Dir: b.TempDir(), Sync: mode})
	l := line(1, 1)
	var (
		mu  sync.Mutex
		seq uint64
	)
	b.SetParallelism(32) // 32 × GOMAXPROCS concurrent clients
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done := make(chan error, 1)
			mu.Lock()
			seq++
			s.Append(seq, l, done)
			mu.Unlock()
			<-done
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	st := s.Stats()
	closeStore(b, s)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(st.Appends)/float64(max(st.Fsyncs, 1)), "appends/fsync")
	b.ReportMetric(float64(st.Appends)/float64(max(st.Batches, 1)), "appends/write")
}

// BenchmarkAppendSyncAlways measures durable appends with group commit.
func BenchmarkAppendSyncAlways(b *testing.B) { benchAppend(b, SyncAlways) }

// BenchmarkAppendFast measures appends acknowledged once written to the
// operating system.
func BenchmarkAppendFast(b *testing.B) { benchAppend(b, SyncFast) }

// BenchmarkAppendSyncAlwaysSerial measures one client at a time: one fsync
// per append, the cost group commit avoids.
func BenchmarkAppendSyncAlwaysSerial(b *testing.B) {
	s, _ := open(b, Options{Dir: b.TempDir()})
	l := line(1, 1)
	b.ResetTimer()
	for i := range b.N {
		done := make(chan error, 1)
		s.Append(uint64(i+1), l, done)
		<-done
	}
	b.StopTimer()
	st := s.Stats()
	closeStore(b, s)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(st.Appends)/float64(max(st.Fsyncs, 1)), "appends/fsync")
}

// BenchmarkRecover1M measures Open of a store holding 1,000,000 clients of
// about 90 bytes each, all in a snapshot or all in the log.
func BenchmarkRecover1M(b *testing.B) {
	if testing.Short() {
		b.Skip("writes about 100 MB")
	}
	const n = 1_000_000
	b.Run("snapshot", func(b *testing.B) {
		dir := b.TempDir()
		s, _ := open(b, Options{Dir: dir})
		err := s.Snapshot(func(yield func(Entry) bool) {
			for i := uint64(1); i <= n; i++ {
				if !yield(Entry{Seq: i, Line: line(i, i)}) {
					return
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		closeStore(b, s)
		benchOpen(b, dir, n)
	})
	b.Run("log", func(b *testing.B) {
		dir := b.TempDir()
		s, _ := open(b, Options{Dir: dir, Sync: SyncFast})
		for i := uint64(1); i <= n; i++ {
			s.Append(i, line(i, i), nil)
		}
		closeStore(b, s)
		benchOpen(b, dir, n)
	})
}

func benchOpen(b *testing.B, dir string, n int) {
	size := dirSize(b, dir)
	b.ReportAllocs()
	for b.Loop() {
		s, st := open(b, Options{Dir: dir})
		if len(st.Entries) != n {
			b.Fatalf("recovered %d entries, want %d", len(st.Entries), n)
		}
		b.StopTimer()
		closeStore(b, s)
		b.StartTimer()
	}
	b.ReportMetric(float64(size), "disk-bytes")
	b.ReportMetric(float64(size)/float64(n), "disk-bytes/entry")
}
