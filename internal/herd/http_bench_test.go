package herd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchConns is how many connections each side of BenchmarkHTTPReport
// uses at once.
const benchConns = 16

// BenchmarkHTTPReport compares POST /v1/locations (keep-alive, 16
// connections, one request in flight on each) with TCP IAMAT (16
// connections, one command in flight on each) at one server, in the same
// run. ns/op is an HTTP report; it also reports both rates, their ratio
// and the p50/p99 latency of an HTTP report:
//
//	go test ./internal/herd -run '^$' -bench BenchmarkHTTPReport -benchtime 200000x
func BenchmarkHTTPReport(b *testing.B) {
	cfg := httpConfig(b)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	h := startHerd(b, cfg, nil)
	m := h.Member("Goloman")

	b.StopTimer()
	tcpStart := time.Now()
	perConn(b.N, func(conn, n int) { tcpReports(b, m.ClientAddr, conn, n) })
	tcpRate := float64(b.N) / time.Since(tcpStart).Seconds()

	lat := make([][]time.Duration, benchConns)
	b.StartTimer()
	httpStart := time.Now()
	perConn(b.N, func(conn, n int) { lat[conn] = httpReports(b, m.HTTPAddr, conn, n) })
	httpRate := float64(b.N) / time.Since(httpStart).Seconds()
	b.StopTimer()

	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(tcpRate, "tcp-reports/s")
	b.ReportMetric(httpRate, "http-reports/s")
	b.ReportMetric(httpRate/tcpRate, "http/tcp")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "http-p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "http-p99-µs")
	}
}

// perConn runs n operations split over benchConns goroutines.
func perConn(n int, run func(conn, n int)) {
	var wg sync.WaitGroup
	for c := range benchConns {
		k := n / benchConns
		if c < n%benchConns {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(c, k)
		}()
	}
	wg.Wait()
}

// tcpReports sends n IAMATs on one connection, each after the previous
// reply; every one updates the connection's client.
func tcpReports(b *testing.B, addr string, conn, n int) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer nc.Close()
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	for i := range n {
		fmt.Fprintf(w, "IAMAT tcp%d +34.068930-118.445127 %d\n", conn, 1621464000+i)
		w.Flush()
		line, err := r.ReadSlice('\n')
		if err != nil || !bytes.HasPrefix(line, []byte("AT ")) {
			b.Errorf("IAMAT: %q %v", line, err)
			return
		}
	}
}

// httpReports POSTs n reports over one keep-alive connection and returns
// how long each took.
func httpReports(b *testing.B, addr string, conn, n int) []time.Duration {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/v1/locations"
	out := make([]time.Duration, 0, n)
	var body []byte
	for i := range n {
		body = append(body[:0], `{"client": "http`...)
		body = strconv.AppendInt(body, int64(conn), 10)
		body = append(body, `", "lat": 34.068930, "lon": -118.445127, "time": "`...)
		body = strconv.AppendInt(body, int64(1621464000+i), 10)
		body = append(body, `"}`...)
		start := time.Now()
		res, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return out
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out = append(out, time.Since(start))
		if res.StatusCode != 200 {
			b.Errorf("POST: %d", res.StatusCode)
			return out
		}
	}
	return out
}
