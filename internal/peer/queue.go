package peer

import "sync"

// outQueue is one connection's bounded queue of changes to send, in
// change order. It grows as changes come, up to max, instead of holding
// room for max from the start: a new or idle link costs little, and a
// reconnect allocates nothing large.
type outQueue struct {
	mu    sync.Mutex
	items []item // guarded by mu
	// passed is the Seq of the latest change that came from this
	// neighbour, if it is later than every item (0 otherwise): it is not
	// sent back, only the neighbour's position advances, with the next
	// batch or heartbeat. Guarded by mu.
	passed uint64
	max    int // immutable

	// ready has a token whenever items may be non-empty: push puts one in
	// when it makes the queue non-empty; the one consumer takes it, then
	// takes every item.
	ready chan struct{}
}

func newOutQueue(max int) *outQueue {
	return &outQueue{max: max, ready: make(chan struct{}, 1)}
}

// push adds it unless the queue holds max items already; it never blocks.
func (q *outQueue) push(it item) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.passed = 0 // it is later
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// pass records that the change seq came from this neighbour. It takes no
// room and does not wake the consumer: nothing is to be written for it.
func (q *outQueue) pass(seq uint64) {
	q.mu.Lock()
	q.passed = seq
	q.mu.Unlock()
}

// shrinkAbove is the capacity past which a drained queue lets its buffer
// go, so one burst does not hold memory for the link's life.
const shrinkAbove = 4096

// take moves every queued item to dst (reusing its room) and returns it,
// with the Seq of the latest change passed after them (0 if none).
func (q *outQueue) take(dst []item) ([]item, uint64) {
	q.mu.Lock()
	passed := q.passed
	q.passed = 0
	dst = append(dst[:0], q.items...)
	clear(q.items)
	if cap(q.items) > shrinkAbove {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	q.mu.Unlock()
	return dst, passed
}

// len returns how many items wait.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
