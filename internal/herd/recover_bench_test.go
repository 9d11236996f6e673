package herd

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/store"
)

// BenchmarkStart1M measures the start of a member whose data directory
// holds 1,000,000 clients in the log: the store's checks and recovery,
// parsing every record and filling the table.
func BenchmarkStart1M(b *testing.B) {
	if testing.Short() {
		b.Skip("writes about 100 MB")
	}
	const n = 1_000_000
	cfg := defaultConfig(b)
	cfg.Servers = []config.Server{cfg.Servers[0]}
	cfg.Servers[0].Neighbors = nil
	cfg.DataDir = b.TempDir()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	s, _, err := store.Open(store.Options{Dir: filepath.Join(cfg.DataDir, "Goloman"), Sync: store.SyncFast})
	if err != nil {
		b.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		s.Append(i, fmt.Sprintf("AT Goloman +0.263873386 client%07d.cs.ucla.edu +34.068930-118.445127 %d.959498503", i, 1621464827+i), nil)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		start := time.Now()
		h, err := Start(Options{Config: cfg})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/start")
		if got := h.Member("Goloman").Table.Len(); got != n {
			b.Fatalf("%d clients after the start, want %d", got, n)
		}
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h.Close(ctx)
		cancel()
		b.StartTimer()
	}
}
