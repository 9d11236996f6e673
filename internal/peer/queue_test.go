package peer

import (
	"slices"
	"sync"
	"testing"
)

func TestOutQueue(t *testing.T) {
	q := newOutQueue(3)
	for i := range uint64(3) {
		if !q.push(item{seq: i + 1}) {
			t.Fatalf("push %d refused below max", i+1)
		}
	}
	if q.push(item{seq: 4}) {
		t.Fatal("push past max accepted")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token after the first push")
	}
	got, _ := q.take(nil)
	if seqs := seqsOf(got); !slices.Equal(seqs, []uint64{1, 2, 3}) || q.len() != 0 {
		t.Fatalf("took %v, %d left", seqs, q.len())
	}
	if !q.push(item{seq: 5}) {
		t.Fatal("push refused after a take")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token after pushing into an empty queue")
	}
}

// TestOutQueueConcurrent: one producer, one consumer that waits on ready:
// every item arrives once, in order.
func TestOutQueueConcurrent(t *testing.T) {
	const n = 100000
	q := newOutQueue(n)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range uint64(n) {
			q.push(item{seq: i})
		}
	})
	var got []uint64
	var batch []item
	for len(got) < n {
		<-q.ready
		batch, _ = q.take(batch)
		got = append(got, seqsOf(batch)...)
	}
	wg.Wait()
	for i, s := range got {
		if s != uint64(i) {
			t.Fatalf("item %d is seq %d", i, s)
		}
	}
}

func seqsOf(items []item) []uint64 {
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = it.seq
	}
	return out
}

// A change passed back to the neighbour it came from wakes nothing and
// takes no room; take reports it while no later item is queued.
func TestOutQueuePass(t *testing.T) {
	q := newOutQueue(1)
	q.pass(7)
	select {
	case <-q.ready:
		t.Fatal("a passed change woke the writer")
	default:
	}
	if got, passed := q.take(nil); len(got) != 0 || passed != 7 {
		t.Fatalf("take = %v, %d; want nothing, 7", got, passed)
	}
	if _, passed := q.take(nil); passed != 0 {
		t.Fatalf("passed %d again after a take", passed)
	}
	q.pass(8)
	if !q.push(item{seq: 9}) {
		t.Fatal("a passed change took the queue's room")
	}
	q.pass(10)
	if got, passed := q.take(nil); !slices.Equal(seqsOf(got), []uint64{9}) || passed != 10 {
		t.Fatalf("take = %v, %d; want [9], 10", seqsOf(got), passed)
	}
	q.pass(11)
	q.push(item{seq: 12})
	if got, passed := q.take(nil); !slices.Equal(seqsOf(got), []uint64{12}) || passed != 0 {
		t.Fatalf("take = %v, %d; want [12], 0", seqsOf(got), passed)
	}
}
