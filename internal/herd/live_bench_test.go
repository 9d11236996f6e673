package herd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herd/internal/httpapi"
	"herd/internal/places"
)

// oneServer is a one-member herd with an http listener.
func oneServer(b *testing.B, o Options) *Member {
	cfg := httpConfig(b)
	cfg.Servers = cfg.Servers[:1]
	cfg.Servers[0].Neighbors = nil
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	o.Config = cfg
	o.NewFinder = func(string) places.Finder { return &fakeFinder{} }
	h, err := Start(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(context.Background()) })
	return h.Member(cfg.Servers[0].Name)
}

// iamats sends n IAMATs on each of conns pipelined connections (clients
// spread over the world, each moving) and waits for every reply.
func iamats(b *testing.B, addr string, conns, n, round int) {
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := dial(b, addr)
			cl.nc.SetDeadline(time.Now().Add(5 * time.Minute)) // on a loaded machine
			var sb strings.Builder
			for i := range n {
				// Each client has a home somewhere on Earth and moves a
				// little (about 10 m) with every round, as phones do.
				id := i % 5000
				lat := float64((id*7919+c*104729)%17900)/100 - 89.5 + float64(round)*0.0001
				lon := float64((id*104723+c*7907)%35900)/100 - 179.5
				fmt.Fprintf(&sb, "IAMAT b%d-%d %+.4f%+.4f %d\n", c, id, lat, lon, 1000000+round*n+i)
			}
			go cl.nc.Write([]byte(sb.String()))
			for range n {
				cl.line()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkIAMATIndexCost compares the IAMAT rate of a server that keeps
// its spatial index and live log with one that does not (16 pipelined
// connections, 80,000 clients spread over the world, each moving about
// 10 m per report), in the same run:
//
//	go test ./internal/herd -run '^$' -bench BenchmarkIAMATIndexCost -benchtime 400000x
func BenchmarkIAMATIndexCost(b *testing.B) {
	const conns = 16
	with := oneServer(b, Options{})
	without := oneServer(b, Options{withoutLive: true})
	per := max(b.N/conns, 1)
	rate := func(m *Member, round int) float64 {
		start := time.Now()
		iamats(b, m.ClientAddr, conns, per, round)
		return float64(per*conns) / time.Since(start).Seconds()
	}
	// Warm both (clients known), then alternate to share the machine's noise.
	rate(with, 0)
	rate(without, 0)
	b.ResetTimer()
	var rw, ro float64
	for r := 1; r <= 2; r++ {
		ro += rate(without, r)
		rw += rate(with, r)
	}
	b.StopTimer()
	b.ReportMetric(rw/2, "iamat/s-with-index")
	b.ReportMetric(ro/2, "iamat/s-without")
	b.ReportMetric(rw/ro, "with/without")
}

// BenchmarkStreamFanOut measures events per second delivered to 1,000 open
// streams at one server while IAMATs arrive (b.N IAMATs, each an event on
// every stream):
//
//	go test ./internal/herd -run '^$' -bench BenchmarkStreamFanOut -benchtime 5000x
func BenchmarkStreamFanOut(b *testing.B) {
	const streams = 1000
	m := oneServer(b, Options{HTTPOptions: func(_ string, o *httpapi.Options) { o.StreamBuffer = liveHistory }})
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams}
	cl := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	var got atomic.Int64
	var open, done sync.WaitGroup
	for range streams {
		open.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+m.HTTPAddr+"/v1/stream", nil)
			res, err := cl.Do(req)
			open.Done()
			if err != nil {
				return
			}
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte("event: location")) {
					got.Add(1)
				}
			}
		}()
	}
	open.Wait()
	waitFor(b, 10*time.Second, "every stream open", func() bool { return gathered(b, m, "herd_streams_open") == streams })
	b.ResetTimer()
	start := time.Now()
	iamats(b, m.ClientAddr, 4, max(b.N/4, 1), 1)
	want := int64(streams * 4 * max(b.N/4, 1))
	deadline := time.Now().Add(5 * time.Minute)
	for got.Load() < want && time.Now().Before(deadline) && gathered(b, m, "herd_streams_cut_off_total") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	if n := gathered(b, m, "herd_streams_cut_off_total"); n > 0 {
		b.Fatalf("%v streams were cut off", n)
	}
	b.ReportMetric(float64(got.Load())/el.Seconds(), "events/s")
	b.ReportMetric(float64(want)/float64(streams)/el.Seconds(), "changes/s")
	cancel()
	done.Wait()
}
