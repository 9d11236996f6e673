package peer

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// admission bounds the handshakes in progress: at most MaxHandshakes per
// server and MaxHandshakesPerSource per source address, so strangers
// opening connections and never finishing a handshake hold a fixed amount
// of memory and no client is refused because of them.
type admission struct {
	mu       sync.Mutex
	total    int            // guarded by mu
	bySource map[string]int // guarded by mu: at most MaxHandshakes keys
}

// admit reserves a handshake slot for a connection from remote. The
// returned release frees it; ok is false when no slot is free.
func (a *admission) admit(remote net.Addr) (release func(), ok bool) {
	src := sourceOf(remote)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total >= MaxHandshakes || a.bySource[src] >= MaxHandshakesPerSource {
		return nil, false
	}
	if a.bySource == nil {
		a.bySource = map[string]int{}
	}
	a.total++
	a.bySource[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.total--
			if a.bySource[src]--; a.bySource[src] == 0 {
				delete(a.bySource, src)
			}
		})
	}, true
}

// inProgress returns how many handshakes hold a slot.
func (a *admission) inProgress() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// sourceOf is the IP of a remote address (its port left out).
func sourceOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// refusals counts refused handshakes by reason and throttles their logs to
// one per key (a neighbour's name, or the reason for strangers) per
// refusalLogEvery.
type refusals struct {
	counts [numRefusals]atomic.Int64

	mu   sync.Mutex
	last map[string]time.Time // guarded by mu: keys are neighbour names and refusal labels
}

const refusalLogEvery = time.Minute

// note counts one refusal and reports whether it should be logged now.
func (r *refusals) note(code RefuseReason, key string, now time.Time) bool {
	if code < numRefusals {
		r.counts[code].Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < refusalLogEvery {
		return false
	}
	r.last[key] = now
	return true
}

// Refusals returns the count of refused handshakes by reason label.
func (m *Manager) Refusals() map[string]int64 {
	out := make(map[string]int64, numRefusals)
	for i := range numRefusals {
		out[i.String()] = m.refused.counts[i].Load()
	}
	return out
}

// HandshakesInProgress returns how many unauthenticated connections are
// in their handshake.
func (m *Manager) HandshakesInProgress() int { return m.admission.inProgress() }
