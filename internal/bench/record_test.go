package bench

import (
	"errors"
	"testing"
	"time"
)

func TestPercentilesOfKnownHistogram(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 1000; v++ { // 1µs .. 1000µs, once each
		h.RecordValue(v * 1000)
	}
	p := PercentilesOf(h)
	want := Percentiles{Count: 1000, Min: 1000, P50: 500_000, P90: 900_000, P99: 990_000, P999: 999_000, Max: 1_000_000}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"count", p.Count, want.Count}, {"min", p.Min, want.Min}, {"p50", p.P50, want.P50}, {"p90", p.P90, want.P90},
		{"p99", p.P99, want.P99}, {"p99.9", p.P999, want.P999}, {"max", p.Max, want.Max},
	} {
		if !h.ValuesAreEquivalent(c.got, c.want) {
			t.Errorf("%s = %d, want %d (within the histogram's precision)", c.name, c.got, c.want)
		}
	}
	if p.Mean < 500_000 || p.Mean > 501_000 {
		t.Errorf("mean %v, want 500500", p.Mean)
	}
	if (PercentilesOf(newHistogram()) != Percentiles{}) {
		t.Error("an empty histogram does not give zeros")
	}
}

func TestRecorderMergesShards(t *testing.T) {
	rec := newRecorder()
	a, b := rec.shard(), rec.shard()
	for i := range 1500 { // more than one batch
		a.ok(time.Duration(i+1) * time.Microsecond)
	}
	b.ok(time.Hour) // beyond the histogram: clamped, not lost
	b.status["OK"] += 2
	a.flush()
	b.flush()
	rec.fail(KindIO, errors.New("boom"), 1)
	rec.fail(KindIO, errors.New("boom"), 2) // same message: one sample
	rec.fail(KindAbandoned, errors.New("gone"), 0)
	var res Result
	rec.result(&res)
	if res.OK != 1501 || res.Errors != 3 || res.Requests != 1504 {
		t.Errorf("ok %d errors %d requests %d", res.OK, res.Errors, res.Requests)
	}
	if res.Latency.Count != 1501 || res.Latency.Max < int64(histHighest)/2 {
		t.Errorf("latency %+v", res.Latency)
	}
	if len(res.ErrorSamples) != 1 || res.ErrorKinds[KindIO] != 3 || res.ErrorKinds[KindAbandoned] != 0 {
		t.Errorf("kinds %v samples %q", res.ErrorKinds, res.ErrorSamples)
	}
	if res.PlacesStatus["OK"] != 2 {
		t.Errorf("places status %v", res.PlacesStatus)
	}
}

func TestFormatNanos(t *testing.T) {
	for ns, want := range map[int64]string{0: "0", 999: "999ns", 87_345: "87.3µs", 1_254_000: "1.25ms", 123_400_000: "123ms", 2e9: "2.00s"} {
		if got := FormatNanos(ns); got != want {
			t.Errorf("FormatNanos(%d) = %q, want %q", ns, got, want)
		}
	}
}
