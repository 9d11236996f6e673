package herd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/location"
)

// BenchmarkCatchUp1M reports the bytes a server sends a neighbour that comes
// back after being down while 10,000 of 1,000,000 clients moved (both with
// durable state), against the size of the whole table.
func BenchmarkCatchUp1M(b *testing.B) {
	const clients, moved = 1_000_000, 10_000
	for b.Loop() {
		cfg := defaultConfig(b)
		cfg.LogDir = ""
		cfg.DataDir = b.TempDir()
		cfg.DataSync = "fast"
		cfg.Servers = []config.Server{
			{Name: "A", Addr: "127.0.0.1:0", Neighbors: []string{"B"}},
			{Name: "B", Addr: "127.0.0.1:0"},
		}
		cfg.Peer.QueueSize = 1 << 20
		h := startHerd(b, cfg, nil)
		a, bb := h.Member("A"), h.Member("B")
		pipe(b, a.ClientAddr, "c", clients, 1)
		waitFor(b, 5*time.Minute, "B to hold every client", func() bool { return bb.Table.Len() == clients })
		waitFor(b, time.Minute, "B's position to reach A's last change", func() bool {
			return linkOf(bb, "A").Pos.Seq == a.Table.Seq()
		})
		var full int64
		a.Table.Range(func(r location.Record) bool { full += int64(len(r.Line)) + 1; return true })
		addr := bb.ClientAddr
		if err := h.Stop(context.Background(), "B"); err != nil {
			b.Fatal(err)
		}
		pipe(b, a.ClientAddr, "c", moved, 2)
		before := linkOf(a, "B")
		if err := h.Restart("B", addr, addr); err != nil {
			b.Fatal(err)
		}
		bb = h.Member("B")
		last := fmt.Sprintf("c%d", moved-1)
		waitFor(b, time.Minute, "B to catch up", func() bool {
			r, _ := bb.Table.Get(last)
			return len(r.Line) > 2 && r.Line[len(r.Line)-2:] == " 2"
		})
		after := linkOf(a, "B")
		sent := after.SyncBytes - before.SyncBytes
		b.ReportMetric(float64(sent), "catchup-bytes")
		b.ReportMetric(float64(after.SyncRecords-before.SyncRecords), "catchup-records")
		b.ReportMetric(float64(full), "table-bytes")
		h.Close(context.Background())
	}
}

// pipe sends n IAMATs for clients prefix0… at time tm on one connection,
// pipelined, and reads every reply.
func pipe(b *testing.B, addr, prefix string, n, tm int) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	done := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(nc, 1<<16)
		for i := range n {
			fmt.Fprintf(w, "IAMAT %s%d +34.068930-118.445127 %d\n", prefix, i, tm)
		}
		done <- w.Flush()
	}()
	r := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for i := range n {
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatalf("reply %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
