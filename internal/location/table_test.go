package location

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"herd/internal/protocol"
)

func rec(t testing.TB, line string) Record {
	t.Helper()
	r, err := NewRecord([]byte(line))
	if err != nil {
		t.Fatalf("NewRecord(%q): %v", line, err)
	}
	return r
}

func TestNewRecord(t *testing.T) {
	r := rec(t, "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
	if r.Client != "kiwi.cs.ucla.edu" || r.Line != "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503" {
		t.Fatalf("got %+v", r)
	}
	if _, err := NewRecord([]byte("IAMAT kiwi +1+1 1")); err == nil {
		t.Fatal("NewRecord accepted an IAMAT line")
	}
}

func TestMergeRule(t *testing.T) {
	old := rec(t, "AT A +0.100000000 c +1+1 10.5")
	newer := rec(t, "AT B +0.100000000 c +2+2 10.6")
	older := rec(t, "AT B +0.100000000 c +2+2 10.4")
	sameTimeGreater := rec(t, "AT B +0.100000000 c +1+1 10.5")
	sameTimeLess := rec(t, "AT A +0.000000000 c +1+1 10.5")
	tests := map[string]struct {
		r     Record
		local bool
		want  Record
	}{
		"newer wins":                      {newer, false, newer},
		"older loses":                     {older, false, old},
		"same line is no change":          {old, false, old},
		"equal time, greater line wins":   {sameTimeGreater, false, sameTimeGreater},
		"equal time, smaller line loses":  {sameTimeLess, false, old},
		"local newer wins":                {newer, true, newer},
		"local equal time never replaces": {sameTimeGreater, true, old},
		"local older loses":               {older, true, old},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tab := NewTable()
			tab.Apply(old, "")
			var got Record
			var changed bool
			if tt.local {
				got, changed, _ = tab.ApplyLocal(tt.r)
			} else {
				got, changed = tab.Apply(tt.r, "")
			}
			if got.Line != tt.want.Line || changed != (tt.want == tt.r && tt.r != old) {
				t.Fatalf("got %q changed=%v, want %q", got.Line, changed, tt.want.Line)
			}
			if stored, _ := tab.Get("c"); stored.Line != tt.want.Line {
				t.Fatalf("stored %q, want %q", stored.Line, tt.want.Line)
			}
		})
	}
}

// TestConvergence applies the same set of records in different orders to
// several tables: they must all end with the same record.
func TestConvergence(t *testing.T) {
	lines := []string{
		"AT A +0.100000000 c +1+1 10.5",
		"AT B +0.200000000 c +2+2 10.5",
		"AT C +0.300000000 c +3+3 10.499999999",
		"AT D +0.100000000 c +4+4 10.5",
	}
	orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}}
	var want string
	for _, o := range orders {
		tab := NewTable()
		for _, i := range o {
			tab.Apply(rec(t, lines[i]), "")
		}
		got, _ := tab.Get("c")
		if want == "" {
			want = got.Line
		}
		if got.Line != want {
			t.Fatalf("order %v ended with %q, another with %q", o, got.Line, want)
		}
	}
	if want != lines[3] {
		t.Fatalf("winner %q, want the greatest line among the newest, %q", want, lines[3])
	}
}

func TestConcurrentApply(t *testing.T) {
	tab := NewTable()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				tab.Apply(rec(t, fmt.Sprintf("AT S%d +0.000000000 c%d +1+1 %d", g, i%100, i)), "")
			}
		}()
	}
	wg.Wait()
	if tab.Len() != 100 {
		t.Fatalf("Len = %d, want 100", tab.Len())
	}
	n := 0
	tab.Range(func(r Record) bool {
		n++
		if r.Time.Sec < 900 {
			t.Errorf("client %s kept stale time %d", r.Client, r.Time.Sec)
		}
		return true
	})
	if n != 100 {
		t.Fatalf("Range saw %d records", n)
	}
}

func TestSeqAndHooks(t *testing.T) {
	tab := NewTable()
	var seen []Record
	var from []string
	tab.OnChange(func(r Record, f string) {
		seen = append(seen, r)
		from = append(from, f)
	})
	tab.ApplyLocal(rec(t, "AT A +0.000000000 a +1+1 1"))
	tab.Apply(rec(t, "AT B +0.000000000 b +1+1 1"), "B")
	tab.Apply(rec(t, "AT B +0.000000000 b +1+1 0"), "B") // stale: no change, no hook
	tab.ApplyLocal(rec(t, "AT A +0.000000000 a +1+1 2"))
	if len(seen) != 3 || seen[0].Seq != 1 || seen[1].Seq != 2 || seen[2].Seq != 3 || tab.Seq() != 3 {
		t.Fatalf("changes %+v, seq %d", seen, tab.Seq())
	}
	if from[0] != "" || from[1] != "B" {
		t.Fatalf("from = %q", from)
	}
	if r, _ := tab.Get("a"); r.Seq != 3 {
		t.Fatalf("stored seq %d", r.Seq)
	}
	other := NewTable()
	other.Restore(seen, 10)
	if other.Seq() != 10 || other.Len() != 2 {
		t.Fatalf("restored seq %d len %d", other.Seq(), other.Len())
	}
	if r, _ := other.Get("a"); r.Line != "AT A +0.000000000 a +1+1 2" {
		t.Fatalf("restore kept %q", r.Line)
	}
}

func BenchmarkApplyParallel(b *testing.B) {
	tab := NewTable()
	recs := make([]Record, 4096)
	for i := range recs {
		recs[i] = rec(b, fmt.Sprintf("AT S +0.000000000 client%d +1+1 %d", i, i))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tab.Apply(recs[i%len(recs)], "")
			i++
		}
	})
}

func TestOffer(t *testing.T) {
	tab := NewTable()
	offer := func(line string) bool {
		r := rec(t, line)
		b := []byte(r.Line)
		off := len("AT A +0.000000000 ")
		return tab.Offer(b, b[off:off+len(r.Client)], r.Time, "N")
	}
	if !offer("AT A +0.000000000 c +1+1 5") {
		t.Fatal("first offer not stored")
	}
	if offer("AT A +0.000000000 c +1+1 4") || offer("AT A +0.000000000 c +1+1 5") {
		t.Fatal("stale or repeated offer changed the table")
	}
	if !offer("AT B +0.000000000 c +1+1 5") { // equal time, greater line
		t.Fatal("tie-break winner not stored")
	}
	r, _ := tab.Get("c")
	if r.Line != "AT B +0.000000000 c +1+1 5" || r.From != "N" || r.Client != "c" {
		t.Fatalf("stored %+v", r)
	}
}

// A Record that does not say where its client id sits cannot be stored
// under a wrong key: the table refuses it loudly.
func TestRecordNotMadeRefused(t *testing.T) {
	tb := NewTable()
	line := "AT Goloman +0.1 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	defer func() {
		if recover() == nil {
			t.Fatal("a Record literal was stored")
		}
		if tb.Len() != 0 {
			t.Fatalf("table holds %d records", tb.Len())
		}
	}()
	tb.Apply(Record{Line: line, Client: "kiwi.cs.ucla.edu", Time: protocol.Time{Sec: 1520023934}}, "Hands")
}

// BenchmarkOfferFlood offers updates as a flood brings them to a server in
// the classic herd: each update once new and then twice more, stale, from
// other neighbours; a hook runs for each change.
func BenchmarkOfferFlood(b *testing.B) {
	const clients, updates = 1000, 1 << 16
	lines := make([][]byte, updates)
	for n := range lines {
		lines[n] = fmt.Appendf(nil, "AT Goloman +0.000123456 client%04d +34.068930-118.445127 %d.000000001", n%clients, 1520000000+n)
	}
	var tab *Table
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := i / 3 % updates
		if n == 0 && i%3 == 0 {
			b.StopTimer()
			tab = NewTable(WithLimits(Limits{MaxClockSkew: 24 * time.Hour}))
			tab.OnChange(func(Record, string) {})
			b.StartTimer()
		}
		client, tm, err := protocol.CheckAT(lines[n])
		if err != nil {
			b.Fatal(err)
		}
		tab.Offer(lines[n], client, tm, "Hands")
	}
}
