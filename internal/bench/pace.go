package bench

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// pacer is the clock of an open-loop run. Request j of the run is due at
// start + j/rate and goes to worker j % conns, through that worker's queue
// of due times. One goroutine, on an OS thread of its own, sleeps from due
// time to due time with a precise sleep (the Go timer wakes up to a
// millisecond late, which would swamp loopback latencies); a worker that is
// still busy when its next request is due takes it late, and the latency
// still counts from the due time.
type pacer struct {
	queues []chan time.Time
	unsent *atomic.Int64
	wg     sync.WaitGroup
}

// startPacer starts the pacer of o's open-loop run; requests due at or
// after deadline, or beyond o.Requests, are not issued. A request whose
// worker's queue is full is counted in unsent: the rate is not sustained.
func startPacer(ctx context.Context, o *Options, start, deadline time.Time, unsent *atomic.Int64) *pacer {
	p := &pacer{queues: make([]chan time.Time, o.Conns), unsent: unsent}
	backlog := min(max(int(o.Rate/float64(o.Conns)), 16), 4096) // about a second of a worker's requests
	for i := range p.queues {
		p.queues[i] = make(chan time.Time, backlog)
	}
	step := 1e9 / o.Rate
	p.wg.Go(func() {
		defer func() {
			for _, q := range p.queues {
				close(q)
			}
		}()
		// The thread is never unlocked, so it ends with the goroutine and
		// takes its timer setting with it.
		runtime.LockOSThread()
		preciseTimer()
		for j := int64(0); o.Requests == 0 || j < o.Requests; j++ {
			due := start.Add(time.Duration(float64(j) * step))
			if !due.Before(deadline) || !sleepUntil(ctx, due) {
				return
			}
			select {
			case p.queues[j%int64(len(p.queues))] <- due:
			default:
				unsent.Add(1)
			}
		}
	})
	return p
}

// next returns the due time of worker w's next request, or false when the
// run is over for it or ctx is done. Requests still queued after the
// deadline are counted as unsent.
func (p *pacer) next(ctx context.Context, w int, deadline time.Time) (time.Time, bool) {
	var due time.Time
	var ok bool
	select {
	case due, ok = <-p.queues[w]:
	case <-ctx.Done():
		return due, false
	}
	if !ok {
		return due, false
	}
	if !time.Now().Before(deadline) {
		n := int64(1)
		for range p.queues[w] {
			n++
		}
		p.unsent.Add(n)
		return due, false
	}
	return due, true
}

// drain counts as unsent what is left in worker w's queue after it stopped
// early (a dead server); it returns when the pacer is done.
func (p *pacer) drain(w int) {
	n := int64(0)
	for range p.queues[w] {
		n++
	}
	p.unsent.Add(n)
}

// wait waits for the pacer goroutine to end.
func (p *pacer) wait() { p.wg.Wait() }

// sleepUntil sleeps precisely until t, in slices short enough to notice ctx
// ending; false if it did.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		preciseSleep(min(d, 10*time.Millisecond))
	}
}
