package location

import (
	"errors"
	"testing"
	"time"

	"herd/internal/protocol"
)

// TestTombstoneMerge checks the merge rule with tombstones: a tombstone
// beats older records and loses to newer ones; at an equal time it wins;
// readers do not see it; RangeAll does.
func TestTombstoneMerge(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	tab := NewTable(WithClock(c.now))
	var seen []string
	tab.OnChange(func(r Record, from string) { seen = append(seen, r.Line) })
	if _, _, err := tab.ApplyLocal(at(t, "A", "kiwi", 1_699_999_000)); err != nil {
		t.Fatal(err)
	}
	del, ok := tab.Delete("A", "kiwi")
	if !ok || !del.Deleted() || del.Line != "DEL A kiwi 1700000000.000000000" || del.Client != "kiwi" {
		t.Fatalf("Delete: %+v %v", del, ok)
	}
	if _, ok := tab.Get("kiwi"); ok {
		t.Fatal("a deleted client is still found")
	}
	if _, ok := tab.Delete("A", "kiwi"); ok {
		t.Fatal("deleted twice")
	}
	if tab.Tombstones() != 1 || tab.Len() != 1 {
		t.Fatalf("tombstones %d, len %d", tab.Tombstones(), tab.Len())
	}
	n := 0
	tab.Range(func(Record) bool { n++; return true })
	all := 0
	tab.RangeAll(func(r Record) bool { all++; return r.Deleted() })
	if n != 0 || all != 1 {
		t.Fatalf("Range saw %d, RangeAll %d", n, all)
	}
	// An older record from a neighbour, and an IAMAT at the deletion's time, change nothing.
	if _, changed := tab.Apply(at(t, "B", "kiwi", 1_699_999_500), "B"); changed {
		t.Fatal("an older record brought a deleted client back")
	}
	equal := rec(t, "AT B +0.000000000 kiwi +1+1 1700000000.000000000")
	if _, changed := tab.Apply(equal, "B"); changed {
		t.Fatal("a record as old as the tombstone beat it")
	}
	if _, _, err := tab.ApplyLocal(equal); !errors.Is(err, ErrDeleted) {
		t.Fatalf("IAMAT at the deletion's time: %v, want ErrDeleted", err)
	}
	// A tombstone from a neighbour at an equal time but a greater line wins (deterministic).
	line := []byte("DEL B kiwi 1700000000.000000000")
	client, tm, err := protocol.CheckDEL(line)
	if err != nil || !tab.Offer(line, client, tm, "B") {
		t.Fatalf("the greater tombstone lost: %v", err)
	}
	// A newer IAMAT brings the client back.
	if _, changed, err := tab.ApplyLocal(at(t, "A", "kiwi", 1_700_000_001)); err != nil || !changed {
		t.Fatalf("newer IAMAT: %v %v", changed, err)
	}
	if _, ok := tab.Get("kiwi"); !ok || tab.Tombstones() != 0 {
		t.Fatal("the newer IAMAT did not bring the client back")
	}
	if len(seen) != 4 {
		t.Fatalf("hooks saw %d changes, want 4: %q", len(seen), seen)
	}
}

// TestDeleteAheadOfTheClock times a tombstone after a record whose client
// clock is ahead of the server's.
func TestDeleteAheadOfTheClock(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	tab := NewTable(WithClock(c.now))
	tab.ApplyLocal(at(t, "A", "kiwi", 1_700_000_100))
	del, ok := tab.Delete("A", "kiwi")
	if !ok || del.Line != "DEL A kiwi 1700000100.500000001" {
		t.Fatalf("%+v", del)
	}
}

// TestTombstoneExpiry forgets tombstones after TombstoneTTL, and refuses
// tombstones already that old; restored tombstones hide their client.
func TestTombstoneExpiry(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	tab := NewTable(WithClock(c.now), WithLimits(Limits{TombstoneTTL: time.Hour}))
	tab.ApplyLocal(at(t, "A", "kiwi", 1_699_999_000))
	tab.ApplyLocal(at(t, "A", "kea", 1_699_999_000))
	tab.Delete("A", "kiwi")
	if tab.ExpireEvery() == 0 {
		t.Fatal("no expiry with a tombstone ttl")
	}
	c.add(2 * time.Hour)
	var forgot []string
	if n := tab.ExpireFunc(func(r Record) { forgot = append(forgot, r.Client) }); n != 0 || len(forgot) != 0 {
		t.Fatalf("records are not expired by the tombstone ttl: %d %v", n, forgot)
	}
	if tab.Tombstones() != 0 || tab.Len() != 1 {
		t.Fatalf("tombstones %d len %d", tab.Tombstones(), tab.Len())
	}
	old := []byte("DEL B kea 1700000000.000000000")
	client, tm, _ := protocol.CheckDEL(old)
	if tab.Offer(old, client, tm, "B") {
		t.Fatal("a tombstone older than the ttl was accepted")
	}

	restored := NewTable()
	r1, _ := NewRecord([]byte("AT A +0.000000000 kiwi +1+1 5"))
	r2, err := NewRecord([]byte("DEL B kiwi 6.000000000\n"))
	if err != nil || r2.Client != "kiwi" || !r2.Deleted() {
		t.Fatalf("NewRecord of a tombstone: %+v %v", r2, err)
	}
	r1.Seq, r2.Seq = 1, 2
	restored.Restore([]Record{r2, r1}, 2)
	if _, ok := restored.Get("kiwi"); ok || restored.Tombstones() != 1 {
		t.Fatal("restored tombstone does not hide the client")
	}
}

// TestExpireFuncTellsWhatItForgot lets an index follow expiry.
func TestExpireFuncTellsWhatItForgot(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	tab := NewTable(WithClock(c.now), WithLimits(Limits{TTL: time.Hour}))
	tab.ApplyLocal(at(t, "A", "kiwi", 1_700_000_000))
	c.add(2 * time.Hour)
	var forgot []string
	if n := tab.ExpireFunc(func(r Record) { forgot = append(forgot, r.Client) }); n != 1 || len(forgot) != 1 || forgot[0] != "kiwi" {
		t.Fatalf("%d %v", n, forgot)
	}
}
