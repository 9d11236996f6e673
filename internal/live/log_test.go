package live

import (
	"testing"

	"herd/internal/location"
)

func change(seq uint64) *Event { return &Event{Kind: Location, Record: location.Record{Seq: seq}} }

// TestLogResumeAndCutOff: a reader resumes after any position the ring
// still holds; one that fell out of it is told so.
func TestLogResumeAndCutOff(t *testing.T) {
	l := NewLog(4, 0xabc, 10)
	if c, ok := l.After(Pos{Seq: 10}); !ok || c != 0 {
		t.Fatalf("at the start: %d %v", c, ok)
	}
	for s := uint64(11); s <= 13; s++ {
		l.Append(change(s))
	}
	l.Append(&Event{Kind: Expired})
	if _, p := l.Head(); p != (Pos{13, 1}) || l.ID(p) != "abc-13.1" {
		t.Fatalf("expiry position %v %s", p, l.ID(p))
	}
	if p, err := l.ParseID("abc-13.1"); err != nil || p != (Pos{13, 1}) {
		t.Fatalf("ParseID: %v %v", p, err)
	}
	if _, err := l.ParseID("abd-13"); err == nil {
		t.Fatal("another history's id was accepted")
	}
	c, ok := l.After(Pos{Seq: 12})
	evs, next, behind, ok2 := l.Read(c, nil, 10)
	if !ok || !ok2 || len(evs) != 2 || evs[0].Pos.Seq != 13 || evs[1].Kind != Expired || behind != 0 {
		t.Fatalf("resume after 12: %v %v %+v %d", ok, ok2, evs, behind)
	}
	l.Append(change(14))
	l.Append(change(15)) // 11 and 12 leave the ring
	if _, ok := l.After(Pos{Seq: 11}); ok {
		t.Fatal("resumed after a position the ring no longer holds")
	}
	if _, ok := l.After(Pos{Seq: 12}); !ok {
		t.Fatal("every event after 12 is held")
	}
	if _, ok := l.After(Pos{Seq: 99}); ok {
		t.Fatal("resumed after a position of the future")
	}
	if _, _, _, ok := l.Read(next-3, nil, 10); ok {
		t.Fatal("a reader that fell out of the ring was not told")
	}
	select {
	case <-l.Wait():
		t.Fatal("woken without an event")
	default:
	}
	w := l.Wait()
	l.Append(change(16))
	<-w
	if got := l.Latest(2, func(e *Event) bool { return e.Kind == Location }); len(got) != 2 || got[0].Pos.Seq != 16 {
		t.Fatalf("Latest: %+v", got)
	}
}
