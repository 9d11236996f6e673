package location

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkTableMemory reports the heap the table holds per known client at
// 1,000,000 clients, with AT lines of a typical length.
func BenchmarkTableMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t := NewTable()
		for i := range n {
			line := fmt.Sprintf("AT Goloman +0.263873386 client%07d.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", i)
			r, err := NewRecord([]byte(line))
			if err != nil {
				b.Fatal(err)
			}
			t.Apply(r, "Hands")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/client")
		runtime.KeepAlive(t)
	}
}
