package herd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

const idleConns = 10_000

// TestHelperIdleClients is not a test: run by BenchmarkIdleConnections in
// a child process (each process may hold 20,000 files here), it opens
// idleConns connections to $HERD_IDLE_ADDR, says "ready", and holds them
// until its standard input closes.
func TestHelperIdleClients(t *testing.T) {
	addr := os.Getenv("HERD_IDLE_ADDR")
	if addr == "" {
		t.Skip("helper process for BenchmarkIdleConnections")
	}
	conns := make([]net.Conn, 0, idleConns)
	for range idleConns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Printf("error after %d connections: %v\n", len(conns), err)
			return
		}
		conns = append(conns, nc)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
}

// BenchmarkIdleConnections reports the memory a server spends on 10,000
// idle client connections held by another process.
func BenchmarkIdleConnections(b *testing.B) {
	cfg := defaultConfig(b)
	cfg.Servers = cfg.Servers[3:4] // Welsh alone
	cfg.Servers[0].Neighbors = nil
	cfg.Client.MaxConns = 2 * idleConns
	h := startHerd(b, cfg, nil)
	m := h.Member("Welsh")
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIdleClients$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HERD_IDLE_ADDR="+m.ClientAddr)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			b.Fatalf("helper: %q", line)
		}
		waitFor(b, 30*time.Second, "every connection to be served", func() bool {
			return m.Metrics.Counts()["conns_open"] == idleConns
		})
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := float64((after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse))
		b.ReportMetric(used/(1<<20), "MB")
		b.ReportMetric(used/idleConns, "bytes/conn")
		stdin.Close()
		cmd.Wait()
		waitFor(b, 30*time.Second, "every connection to close", func() bool {
			return m.Metrics.Counts()["conns_open"] == 0
		})
	}
}
