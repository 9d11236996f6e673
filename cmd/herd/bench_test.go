package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchCommand(t *testing.T) {
	code, out, errs := runMain(t, "", "bench", "-spawn", "-places", "fixed", "-n", "300", "-c", "4", "-warmup", "100ms", "-q", "-json")
	if code != exitOK {
		t.Fatalf("code %d\n%s", code, errs)
	}
	var rep struct {
		Herd    struct{ Requests, Errors int64 }
		WarmupS float64 `json:"warmup_s"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Herd.Requests < 300 || rep.Herd.Errors != 0 || rep.WarmupS != 0.1 {
		t.Fatalf("report %+v (%v):\n%s", rep, err, out)
	}
	code, out, errs = runMain(t, "", "bench", "-spawn", "-workload", "propagation", "-n", "20", "-q")
	if code != exitOK || !strings.Contains(out, "farthest servers of the herd (3 hops)") {
		t.Fatalf("propagation: code %d\n%s\n%s", code, out, errs)
	}
	// More connections than the spawned servers take: refused before any
	// load, with the reason.
	cfg := writeConfig(t, "[client]\nmax_conns = 3\n\n[[server]]\nname = \"Alone\"\naddr = \"127.0.0.1:12000\"\n")
	code, _, errs = runMain(t, "", "bench", "-spawn", "-config", cfg, "-places", "fixed", "-c", "4", "-d", "1s", "-q")
	if code != exitUsage || !strings.Contains(errs, "more connections than the spawned servers accept at once (3 each") {
		t.Errorf("-c 4 against max_conns 3: code %d\n%s", code, errs)
	}
	for _, args := range [][]string{
		{"bench", "-addr", "127.0.0.1:1", "-spawn"},
		{"bench", "-places", "fixed"},
		{"bench", "-c", "0"},
		{"bench", "-warmup", "-1s"},
		{"bench", "-server", "Nobody"},
		{"bench", "extra"},
	} {
		if code, _, _ := runMain(t, "", args...); code != exitUsage {
			t.Errorf("%v: code %d, want %d", args, code, exitUsage)
		}
	}
}
