package status

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func update(i int) Update {
	return Update{
		Time:   time.Unix(1621464827, int64(i)),
		Client: fmt.Sprintf("c%d", i),
		Line:   fmt.Sprintf("AT Goloman +0.000000001 c%d +34.068930-118.445127 1621464827.%09d", i, i),
		From:   FromClient,
	}
}

func clients(us []Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Client
	}
	return out
}

func TestRecent(t *testing.T) {
	tests := map[string]struct {
		size, adds int
		want       []string
	}{
		"empty":          {size: 3, adds: 0, want: []string{}},
		"partly filled":  {size: 3, adds: 2, want: []string{"c1", "c0"}},
		"exactly full":   {size: 3, adds: 3, want: []string{"c2", "c1", "c0"}},
		"wrapped once":   {size: 3, adds: 4, want: []string{"c3", "c2", "c1"}},
		"wrapped twice":  {size: 3, adds: 8, want: []string{"c7", "c6", "c5"}},
		"size one":       {size: 1, adds: 5, want: []string{"c4"}},
		"size zero is 1": {size: 0, adds: 2, want: []string{"c1"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := NewRecent(tt.size)
			for i := range tt.adds {
				r.Add(update(i))
			}
			got := r.List()
			if got == nil {
				t.Fatal("List() = nil, want a non-nil slice")
			}
			if fmt.Sprint(clients(got)) != fmt.Sprint(tt.want) {
				t.Errorf("List() clients = %v, want %v", clients(got), tt.want)
			}
		})
	}
}

func TestRecentListIsACopy(t *testing.T) {
	r := NewRecent(2)
	r.Add(update(0))
	got := r.List()
	got[0].Client = "changed"
	if c := r.List()[0].Client; c != "c0" {
		t.Errorf("after changing List's result, ring holds %q, want c0", c)
	}
}

func TestRecentAddDoesNotAllocate(t *testing.T) {
	r := NewRecent(50)
	u := update(1)
	if n := testing.AllocsPerRun(1000, func() { r.Add(u) }); n != 0 {
		t.Errorf("Add allocates %v times per call, want 0", n)
	}
}

// TestRecentConcurrent adds from several goroutines while others list, and
// checks that every listed update is whole and each writer's updates appear
// newest first.
func TestRecentConcurrent(t *testing.T) {
	const writers, perWriter, size = 4, 2000, 50
	r := NewRecent(size)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r.Add(Update{Time: time.Unix(0, int64(i)), Client: fmt.Sprint(w), Line: fmt.Sprint(i), From: FromClient})
			}
		})
	}
	check := func(list []Update) {
		t.Helper()
		last := map[string]int64{}
		for _, u := range list {
			if u.Line != fmt.Sprint(u.Time.UnixNano()) {
				t.Fatalf("torn update %+v", u)
			}
			if prev, ok := last[u.Client]; ok && u.Time.UnixNano() >= prev {
				t.Fatalf("writer %s: update %d listed after %d, want newest first", u.Client, u.Time.UnixNano(), prev)
			}
			last[u.Client] = u.Time.UnixNano()
		}
	}
	for range 2 {
		wg.Go(func() {
			for range 200 {
				check(r.List())
			}
		})
	}
	wg.Wait()

	list := r.List()
	if len(list) != size {
		t.Fatalf("len(List()) = %d, want %d", len(list), size)
	}
	check(list)
}

func BenchmarkRecentAdd(b *testing.B) {
	r := NewRecent(50)
	u := update(1)
	b.ReportAllocs()
	for b.Loop() {
		r.Add(u)
	}
}
