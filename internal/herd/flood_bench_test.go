package herd

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"
)

// BenchmarkFlood measures the whole flood of the default herd: b.N IAMATs
// sent pipelined to Hands, timed until Welsh (three links away) holds the
// last of them. ns/op is the cost of one update across all five servers.
func BenchmarkFlood(b *testing.B) {
	cfg := defaultConfig(b)
	cfg.LogDir = ""
	h := startHerd(b, cfg, nil)
	nc, err := net.Dial("tcp", h.Member("Hands").ClientAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	welsh := h.Member("Welsh")
	go func() { // replies are not needed; keep them from filling the socket
		r := bufio.NewReader(nc)
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				return
			}
		}
	}()
	w := bufio.NewWriter(nc)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(w, "IAMAT flood%d +1+1 %d\n", i%10000, i+1)
	}
	w.Flush()
	last := fmt.Sprintf("flood%d", (b.N-1)%10000)
	want := fmt.Sprintf(" %d", b.N)
	waitFor(b, time.Minute, "Welsh to hold the last update", func() bool {
		r, ok := welsh.Table.Get(last)
		return ok && len(r.Line) > len(want) && r.Line[len(r.Line)-len(want):] == want
	})
}
