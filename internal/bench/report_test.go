package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReportJSONShape(t *testing.T) {
	herdLike := startReference(t, ReferenceOptions{Name: "Hands"})
	o := Options{Targets: []string{herdLike.Addr()}, Workload: WHATSAT, Conns: 2, Requests: 50, Duration: 20 * time.Second}
	rep, err := Bench(context.Background(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	rep.Notes = []string{"a note"}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	for _, k := range []string{"workload", "mode", "pipeline", "connections", "rate", "duration_s", "request_limit", "clients", "targets", "notes", "herd", "reference", "ratio"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in the report", k)
		}
	}
	if doc["workload"] != "whatsat" || doc["mode"] != "keepalive" || doc["connections"] != 2.0 {
		t.Errorf("parameters %v %v %v", doc["workload"], doc["mode"], doc["connections"])
	}
	for _, part := range []string{"herd", "reference"} {
		res, _ := doc[part].(map[string]any)
		for _, k := range []string{"label", "addrs", "requests", "ok", "errors", "error_kinds", "error_samples", "unsent", "elapsed_s", "throughput", "latency_ns", "places_status"} {
			if _, ok := res[k]; !ok {
				t.Errorf("no %q in %s", k, part)
			}
		}
		lat, _ := res["latency_ns"].(map[string]any)
		for _, k := range []string{"count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"} {
			if v, ok := lat[k].(float64); !ok || v <= 0 {
				t.Errorf("%s latency_ns[%q] = %v, want a positive number", part, k, lat[k])
			}
		}
		if res["requests"] != 50.0 || res["ok"] != 50.0 {
			t.Errorf("%s: requests %v ok %v", part, res["requests"], res["ok"])
		}
	}
	ratio, _ := doc["ratio"].(map[string]any)
	var keys []string
	for k := range ratio {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"max", "p50", "p90", "p99", "p99.9", "throughput"}; !slices.Equal(keys, want) {
		t.Errorf("ratio keys %v, want %v", keys, want)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"herd bench: whatsat, keepalive, 2 connections, closed loop, 50 requests or 20s", "a note", "reference", "herd/ref", "places status of WHATSAT replies: OK 50", "of the reference throughput"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestReportTextShowsErrors(t *testing.T) {
	rep := &Report{Workload: IAMAT, Mode: Oneshot, Connections: 1, DurationS: 1, Targets: []string{"x:1"},
		Herd: &Result{Label: "herd", Requests: 3, Errors: 3, ErrorKinds: map[string]int64{KindIO: 3}, ErrorSamples: []string{"io: refused"}}}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "herd: 3 errors (io 3)") || !strings.Contains(text.String(), "  io: refused") {
		t.Errorf("errors not shown:\n%s", text.String())
	}
}

func TestProgressPrinter(t *testing.T) {
	var term, plain bytes.Buffer
	p := Progress{Label: "herd", Elapsed: time.Second, Duration: 5 * time.Second, OK: 10, Rate: 10}
	tp, pp := NewProgressPrinter(&term, true), NewProgressPrinter(&plain, false)
	tp.Print(p)
	tp.Print(p)
	tp.Done()
	pp.Print(p)
	pp.Done()
	if strings.Count(term.String(), "\r") != 3 || strings.Contains(term.String(), "\n") {
		t.Errorf("terminal output %q", term.String())
	}
	if plain.String() != "herd        1.0s/5s  10 ok  0 errors  10/s\n" {
		t.Errorf("plain output %q", plain.String())
	}
}
