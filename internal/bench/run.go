package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func nowNano() int64 { return time.Now().UnixNano() }

// budget bounds a run in time and count; take is safe for concurrent use.
type budget struct {
	deadline time.Time
	limit    int64 // 0: no count limit
	taken    atomic.Int64
}

// take reserves one request if the run is not over at now.
func (b *budget) take(now time.Time) bool {
	if !now.Before(b.deadline) {
		return false
	}
	return b.limit == 0 || b.taken.Add(1) <= b.limit
}

// exhausted reports whether the count limit has been reached.
func (b *budget) exhausted() bool { return b.limit > 0 && b.taken.Load() >= b.limit }

// sleeper waits on one reusable timer.
type sleeper struct{ t *time.Timer }

// until waits until t; false if ctx ended first.
func (s *sleeper) until(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return true
	case <-ctx.Done():
		s.t.Stop()
		return false
	}
}

// backoff waits after the n-th consecutive connection failure (10 ms
// doubling to 500 ms), so a dead server is not hammered; false if ctx ended
// or the wait would pass the deadline.
func (s *sleeper) backoff(ctx context.Context, n int, deadline time.Time) bool {
	d := min(10*time.Millisecond<<min(n-1, 6), 500*time.Millisecond)
	t := time.Now().Add(d)
	if t.After(deadline) {
		return false
	}
	return s.until(ctx, t)
}

// check validates reply as the answer to req and counts its places status.
func check(req *request, reply []byte, sh *shard) error {
	if req.redis {
		return CheckGEOADDReply(reply)
	}
	if !req.whatsat {
		return CheckIAMATReply(reply, req.client, req.loc, req.timeField())
	}
	st, err := CheckWHATSATReply(reply, req.client)
	if err == nil {
		sh.status[st]++
	}
	return err
}

// runLoad runs the IAMAT, WHATSAT, Mix and Redis workloads.
func runLoad(ctx context.Context, o *Options) (*Result, error) {
	gens := make([]*generator, o.Conns)
	for w := range gens {
		gens[w] = newGenerator(o, w)
	}
	if o.Workload.needsWhatsat() {
		if err := prime(ctx, o, gens); err != nil {
			return nil, err
		}
	}
	rec := newRecorder()
	start := time.Now()
	b := &budget{deadline: start.Add(o.Duration), limit: o.Requests}
	stop := startProgress(ctx, o, rec, start)
	var unsent atomic.Int64
	var pace *pacer
	if o.Rate > 0 {
		pace = startPacer(ctx, o, start, b.deadline, &unsent)
		defer pace.wait()
	}
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Go(func() {
			wk := &worker{o: o, w: w, g: gens[w], b: b, rec: rec, pace: pace}
			if o.Mode == Keepalive && o.Pipeline > 1 {
				wk.pipelined(ctx)
			} else {
				wk.serial(ctx)
			}
			if pace != nil {
				pace.drain(w)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	res := &Result{Label: o.label, Addrs: o.Targets, Unsent: unsent.Load(), Elapsed: elapsed, Seconds: elapsed.Seconds()}
	rec.result(res)
	if elapsed > 0 {
		res.Throughput = float64(res.OK) / elapsed.Seconds()
	}
	return res, nil
}

// prime reports every worker's clients at every target, in the run's
// connection mode, so that WHATSATs ask about known clients. It may take
// as long as the run, or 30 s if that is longer.
func prime(ctx context.Context, o *Options, gens []*generator) error {
	limit := max(o.Duration, 30*time.Second)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(gens))
	for w, g := range gens {
		wg.Go(func() {
			ex := newExchanger(o.Mode, o.Targets, o.Timeout)
			defer ex.close()
			var buf []byte
			var req request
			for t, addr := range o.Targets {
				for i, c := range g.clients {
					buf = g.iamat(buf[:0], &req, c, locations[i%len(locations)])
					reply, err := ex.exchange(ctx, t, buf, false)
					if err == nil {
						err = check(&req, reply, nil)
					}
					if err != nil {
						if errors.Is(ctx.Err(), context.DeadlineExceeded) {
							err = fmt.Errorf("not done after %v: use fewer clients", limit)
						}
						errs[w] = fmt.Errorf("reporting client %s at %s before the run: %w", c, addr, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startProgress calls o.Progress every o.ProgressInterval until the
// returned function is called; that function waits for the last call.
func startProgress(ctx context.Context, o *Options, rec *recorder, start time.Time) (stop func()) {
	if o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(o.ProgressInterval)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				ok, failed := rec.snapshot()
				rate := float64(ok-last) / now.Sub(lastAt).Seconds()
				last, lastAt = ok, now
				o.Progress(Progress{Label: o.label, Elapsed: now.Sub(start), Duration: o.Duration, OK: ok, Errors: failed, Rate: rate})
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// worker is one connection's (Oneshot: one sequence of connections') load.
type worker struct {
	o     *Options
	w     int
	g     *generator
	b     *budget
	rec   *recorder
	pace  *pacer // nil: closed loop
	sleep sleeper
}

// next waits, in an open-loop run, until the worker's next request is due
// and returns its due time, the time its latency counts from; in a
// closed-loop run it reserves a request in the budget and returns now. It
// returns false when the run is over for this worker.
func (wk *worker) next(ctx context.Context) (from time.Time, ok bool) {
	if wk.pace != nil {
		return wk.pace.next(ctx, wk.w, wk.b.deadline)
	}
	now := time.Now()
	return now, wk.b.take(now)
}

// serial sends one request at a time: Oneshot, or Keepalive without
// pipelining.
func (wk *worker) serial(ctx context.Context) {
	o := wk.o
	ex := newExchanger(o.Mode, o.Targets, o.Timeout)
	defer ex.close()
	sh := wk.rec.shard()
	defer sh.flush()
	var buf []byte
	var req request
	fails := 0
	for k := int64(0); ; k++ {
		from, ok := wk.next(ctx)
		if !ok {
			return
		}
		target := wk.w % len(o.Targets)
		if o.Mode == Oneshot {
			target = (wk.w + int(k)) % len(o.Targets)
		}
		buf = wk.g.nextLine(buf[:0], &req)
		sent := time.Now()
		if wk.pace == nil {
			from = sent
		}
		reply, err := ex.exchange(ctx, target, buf, req.whatsat)
		done := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wk.rec.failErr(err)
			fails++
			if !wk.sleep.backoff(ctx, fails, wk.b.deadline) {
				return
			}
			continue
		}
		fails = 0
		if err := check(&req, reply, sh); err != nil {
			wk.rec.failErr(err)
			ex.reset() // the stream may be out of step with the requests
			continue
		}
		sh.ok(done.Sub(from))
		if wk.pace != nil {
			sh.sendLag(sent.Sub(from))
		}
	}
}

// pending is a request written on a pipelined connection, awaiting its reply.
type pending struct {
	req  request
	from time.Time // latency counts from here
	sent time.Time
}

// pipelined keeps Options.Pipeline requests in flight on one connection,
// reconnecting after a failure until the run is over.
func (wk *worker) pipelined(ctx context.Context) {
	sh := wk.rec.shard()
	defer sh.flush()
	fails := 0
	for ctx.Err() == nil && time.Now().Before(wk.b.deadline) && !wk.b.exhausted() {
		more, dialed := wk.session(ctx, sh)
		if dialed {
			fails = 0
		} else {
			fails++
			if !wk.sleep.backoff(ctx, fails, wk.b.deadline) {
				return
			}
		}
		if !more {
			return
		}
	}
}

// session runs one pipelined connection: a writer goroutine sends requests
// while tokens allow, this goroutine reads and checks replies in order. It
// returns whether the run goes on for this worker, and whether the
// connection was made.
func (wk *worker) session(ctx context.Context, sh *shard) (more, dialed bool) {
	o := wk.o
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addr := o.Targets[wk.w%len(o.Targets)]
	c, err := dialKeepalive(sctx, addr, o.Timeout)
	if err != nil {
		if ctx.Err() == nil {
			wk.rec.failErr(err)
		}
		return ctx.Err() == nil, false
	}
	defer c.close()

	tokens := make(chan struct{}, o.Pipeline)
	for range o.Pipeline {
		tokens <- struct{}{}
	}
	fifo := make(chan pending, o.Pipeline)
	var werr atomic.Pointer[error] // the writer's failure, if any
	var writerMore atomic.Bool
	go func() {
		defer close(fifo)
		writerMore.Store(wk.write(sctx, c, tokens, fifo, &werr))
	}()

	var scratch []byte
	var reply []byte
	failed := false
	for p := range fifo {
		if failed {
			continue // drained and counted below
		}
		c.setReadDeadline(sctx, time.Now().Add(o.Timeout))
		reply, scratch, err = readReply(c.r, p.req.whatsat, scratch[:0])
		done := time.Now()
		if err == nil {
			if err = check(&p.req, reply, sh); err == nil {
				sh.ok(done.Sub(p.from))
				if wk.pace != nil {
					sh.sendLag(p.sent.Sub(p.from))
				}
				tokens <- struct{}{}
				continue
			}
		}
		if ctx.Err() != nil {
			failed = true
			continue
		}
		if e := werr.Load(); e != nil && !isWrong(err) {
			err = *e
		}
		wk.rec.failErr(err)
		failed = true
		cancel() // stops the writer; its deadlines are set to the past
		abandoned := int64(0)
		for range fifo {
			abandoned++
		}
		if ctx.Err() == nil {
			wk.rec.fail(KindAbandoned, fmt.Errorf("connection to %s closed after an error with requests in flight", addr), abandoned)
		}
	}
	if failed {
		return ctx.Err() == nil, true
	}
	return writerMore.Load(), true
}

func isWrong(err error) bool {
	var wr *wrongReply
	return errors.As(err, &wr)
}

// write is the writer of a pipelined session. It returns whether the run
// goes on for this worker (false when the budget or the pacer is done).
func (wk *worker) write(ctx context.Context, c *kconn, tokens chan struct{}, fifo chan<- pending, werr *atomic.Pointer[error]) bool {
	o := wk.o
	buf := make([]byte, 0, 4096)
	for {
		select {
		case <-tokens:
		case <-ctx.Done():
			return true
		}
		n := 1
		if wk.pace == nil { // closed loop: send as many as the pipeline allows at once
		grab:
			for n < o.Pipeline {
				select {
				case <-tokens:
					n++
				default:
					break grab
				}
			}
		}
		buf = buf[:0]
		var batch [64]pending
		queued := batch[:0]
		more := true
		for range n {
			from, ok := wk.next(ctx)
			if !ok {
				more = false
				break
			}
			var p pending
			buf = wk.g.nextLine(buf, &p.req)
			p.from = from
			queued = append(queued, p)
			if len(queued) == len(batch) { // flush a full batch before taking more
				if !wk.flush(c, buf, queued, fifo, werr) {
					return true
				}
				buf, queued = buf[:0], batch[:0]
			}
		}
		if len(queued) > 0 && !wk.flush(c, buf, queued, fifo, werr) {
			return true
		}
		if !more {
			return false
		}
	}
}

// flush queues ps for the reader and writes their lines in one call.
func (wk *worker) flush(c *kconn, lines []byte, ps []pending, fifo chan<- pending, werr *atomic.Pointer[error]) bool {
	sent := time.Now()
	for _, p := range ps {
		p.sent = sent
		if wk.pace == nil {
			p.from = sent
		}
		fifo <- p // never blocks: tokens bound what is in flight
	}
	c.nc.SetWriteDeadline(sent.Add(wk.o.Timeout))
	if _, err := c.nc.Write(lines); err != nil {
		err = fmt.Errorf("write: %w", err)
		werr.Store(&err)
		c.nc.SetReadDeadline(past) // wake the reader
		return false
	}
	return true
}

// runPropagation runs the Propagation workload: each sample reports a new
// client at From, then asks To about it until To answers with exactly the
// AT line From sent back.
func runPropagation(ctx context.Context, o *Options) *Result {
	rec := newRecorder()
	start := time.Now()
	b := &budget{deadline: start.Add(o.Duration), limit: o.Requests}
	stop := startProgress(ctx, o, rec, start)
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Go(func() { propagate(ctx, o, w, b, rec) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	res := &Result{Label: o.label, Addrs: []string{o.From, o.To}, Elapsed: elapsed, Seconds: elapsed.Seconds()}
	rec.result(res)
	if elapsed > 0 {
		res.Throughput = float64(res.OK) / elapsed.Seconds()
	}
	return res
}

// propagate is one propagation worker.
func propagate(ctx context.Context, o *Options, w int, b *budget, rec *recorder) {
	const from, to = 0, 1
	ex := newExchanger(o.Mode, []string{o.From, o.To}, o.Timeout)
	defer ex.close()
	sh := rec.shard()
	defer sh.flush()
	g := newGenerator(o, w)
	bound := strconv.Itoa(o.Bound)
	var sl sleeper
	var buf, qbuf, atLine []byte
	var req, q request
	fails := 0
	for k := 0; b.take(time.Now()); k++ {
		client := o.RunID + ".p" + strconv.Itoa(w) + "." + strconv.Itoa(k)
		buf = g.iamat(buf[:0], &req, client, locations[k%len(locations)])
		qbuf = appendWhatsat(qbuf[:0], &q, client, o.Radius, bound)
		t0 := time.Now()
		reply, err := ex.exchange(ctx, from, buf, false)
		if err == nil {
			if err = CheckIAMATReply(reply, req.client, req.loc, req.timeField()); err != nil {
				ex.reset()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rec.failErr(err)
			fails++
			if !sl.backoff(ctx, fails, b.deadline) {
				return
			}
			continue
		}
		fails = 0
		atLine = append(atLine[:0], reply...)
		for polls := 1; ; polls++ {
			reply, err := ex.exchange(ctx, to, qbuf, true)
			if err != nil {
				if ctx.Err() == nil {
					rec.failErr(err)
				}
				break
			}
			if bytes.HasPrefix(reply, []byte("? ")) { // not there yet
				if err := CheckRejectReply(reply, q.line); err != nil {
					rec.failErr(err)
					ex.reset()
					break
				}
				if time.Since(t0) > o.Timeout {
					rec.fail(KindNotPropagated, fmt.Errorf("%s did not know the client %v after it was reported at %s", o.To, o.Timeout, o.From), 1)
					break
				}
				continue
			}
			st, err := CheckWHATSATReply(reply, client)
			if err != nil {
				rec.failErr(err)
				ex.reset()
				break
			}
			got := reply[:bytes.IndexByte(reply, '\n')+1]
			if !o.reference && !bytes.Equal(got, atLine) {
				rec.fail(KindWrongReply, wrong(got, fmt.Sprintf("%s answered a different AT line than %s: want %q", o.To, o.From, atLine)), 1)
				break
			}
			sh.ok(time.Since(t0))
			sh.polls += int64(polls)
			sh.status[st]++
			break
		}
	}
}
