package status

import "sync"

// Recent is a fixed-size ring of the latest updates. It is safe for
// concurrent use; Add copies the Update into a preallocated slot and does not
// allocate.
type Recent struct {
	mu sync.Mutex // guards buf, next and full
	// buf has a fixed length, set by NewRecent; buf[next-1] is the newest.
	buf  []Update
	next int  // slot the next Add writes, in [0, len(buf))
	full bool // every slot of buf holds an update
}

// NewRecent returns a ring holding the latest n updates. A ring with n < 1
// holds one.
func NewRecent(n int) *Recent {
	if n < 1 {
		n = 1
	}
	return &Recent{buf: make([]Update, n)}
}

// Add records u, evicting the oldest update when the ring is full.
func (r *Recent) Add(u Update) {
	r.mu.Lock()
	r.buf[r.next] = u
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
		r.full = true
	}
	r.mu.Unlock()
}

// List returns a copy of the held updates, newest first.
func (r *Recent) List() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Update, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
