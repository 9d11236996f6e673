package herd

import (
	"net"
	"runtime"
	"testing"
	"time"

	"herd/internal/peer"
)

// memInUse is the heap and stack memory in use after a collection.
func memInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkHalfOpenMemory measures what connections to a peer port that
// never say hello cost the server: B/halfopen for each of the
// MaxHandshakes it holds at once, and MB/5000 for the growth while 5,000
// such connections are open (the rest are closed at once).
func BenchmarkHalfOpenMemory(b *testing.B) {
	cfg := defaultConfig(b)
	cfg.Servers[0].PeerAddr = "127.0.0.1:0"
	h := startWith(b, Options{Config: cfg, Names: []string{"Goloman"}, Secrets: [][]byte{[]byte("a-real-secret-of-32-bytes-length")}})
	g := h.Member("Goloman")
	for b.Loop() {
		before := memInUse()
		var conns []net.Conn
		// From 8 loopback sources, so the per-source bound does not stop
		// the server from holding MaxHandshakes.
		for i := range peer.MaxHandshakes {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%8))}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", g.PeerAddr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(b, 5*time.Second, "every handshake slot held", func() bool { return g.Peers.HandshakesInProgress() == peer.MaxHandshakes })
		held := memInUse()
		for range 5000 - peer.MaxHandshakes {
			c, err := net.DialTimeout("tcp", g.PeerAddr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		all := memInUse()
		b.ReportMetric(float64(held-before)/peer.MaxHandshakes, "B/halfopen")
		b.ReportMetric(float64(int64(all)-int64(before))/(1<<20), "MB/5000")
		for _, c := range conns {
			c.Close()
		}
		waitFor(b, 5*time.Second, "the slots free", func() bool { return g.Peers.HandshakesInProgress() == 0 })
	}
}
