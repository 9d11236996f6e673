package peer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"herd/internal/location"
)

// writer is the sending side of one connection; only writeLoop's goroutine
// uses it.
type writer struct {
	m  *Manager
	l  *link
	c  *conn
	cw *countingWriter
	lw *lineWriter

	batch  []item // reused by writeQueued
	seqBuf []byte // reused by endBatch
}

// writeLoop is the only writer of c's socket. Its steps, in order: ask the
// neighbour for what this server missed and wait for its own request, send
// it what it missed, then stream the changes queued since.
func (m *Manager) writeLoop(l *link, c *conn) {
	cw := &countingWriter{w: c.nc}
	w := &writer{m: m, l: l, c: c, cw: cw, lw: c.writer(m.name, bufio.NewWriterSize(cw, 64<<10))}
	req, ok := w.awaitSync()
	if !ok {
		return
	}
	if !w.sendCatchUp(req) {
		return
	}
	w.streamChanges()
}

func (w *writer) deadline() { w.c.nc.SetWriteDeadline(time.Now().Add(w.m.cfg.WriteTimeout.D)) }

func (w *writer) flush() bool {
	if err := w.lw.w.Flush(); err != nil {
		w.c.close(CloseWriteError, "write: "+err.Error())
		return false
	}
	return true
}

// awaitSync sends this server's SYNC and waits for the neighbour's. It
// reports false if the connection ended meanwhile.
func (w *writer) awaitSync() (Pos, bool) {
	w.deadline()
	w.l.mu.Lock()
	pos := w.l.pos
	w.l.mu.Unlock()
	w.lw.lineString(fmt.Sprintf("SYNC %d %d", pos.Epoch, pos.Seq))
	if !w.flush() {
		return Pos{}, false
	}
	t := time.NewTimer(w.m.cfg.DeadAfter.D)
	defer t.Stop()
	select {
	case req := <-w.c.syncReq:
		return req, true
	case <-t.C:
		w.c.close(CloseNoSync, "no SYNC from neighbour")
	case <-w.c.retire:
		w.retire()
	case <-w.c.closed:
	}
	return Pos{}, false
}

// sendCatchUp sends the records the neighbour asked for with req, up to
// the connection's base (what follows comes through c.out), then SYNCED.
func (w *writer) sendCatchUp(req Pos) bool {
	m, c := w.m, w.c
	from, ok := m.deltaFrom(req.Epoch, req.Seq)
	if !ok {
		from = 0 // not our history: send everything
	}
	// A position past base is real when another connection to the same
	// neighbour delivered more meanwhile; what follows base comes through
	// c.out anyway.
	from = min(from, c.base)
	start := w.cw.n
	sent := 0
	m.table.RangeAll(func(r location.Record) bool { // tombstones too: a deletion survives catch-up
		if r.Seq <= from || r.Seq > c.base || r.From == c.peer {
			return true // the neighbour has it, it came from there, or it comes through c.out
		}
		w.lw.lineString(r.Line)
		if sent++; sent%1024 == 0 {
			w.deadline()
		}
		return w.cw.err == nil
	})
	w.lw.lineString(fmt.Sprintf("SYNCED %d %d", m.epoch, c.base))
	if !w.flush() {
		return false
	}
	w.l.syncBytes.Add(w.cw.n - start)
	w.l.syncRecords.Add(int64(sent))
	w.l.sent.Add(int64(sent))
	m.log.Log(context.Background(), catchUpLevel(sent), "catch-up sent", "peer", c.peer, "records", sent, "bytes", w.cw.n-start, "full", from == 0, "from_seq", from, "to_seq", c.base)
	return true
}

// streamChanges sends queued changes as they come, each batch followed by
// SEQ, and a PING when the link is idle, until the connection ends.
// Changes that came from the neighbour are not sent back and wake nothing:
// its position moves past them with the next batch, or at the next
// heartbeat (a SEQ instead of the PING).
func (w *writer) streamChanges() {
	c := w.c
	hb := time.NewTicker(w.m.cfg.Heartbeat.D)
	defer hb.Stop()
	var lastFlush time.Time
	var lastBatch int64
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	for {
		select {
		case <-c.out.ready:
			w.deadline()
			n, last := w.writeQueued(0, 0)
			if last == 0 {
				continue
			}
			// A busy link (its last write carried several updates, less
			// than coalesce ago) collects what arrives until then, so one
			// write(2) carries many updates. A quiet link writes at once.
			if wait := coalesce - time.Since(lastFlush); wait > 0 && lastBatch > 1 && n < 256 {
				hold.Reset(wait)
			collect:
				for n < 256 {
					select {
					case <-c.out.ready:
						n, last = w.writeQueued(n, last)
					case <-hold.C:
						break collect
					}
				}
				hold.Stop()
			}
			if !w.endBatch(n, last) {
				return
			}
			lastFlush, lastBatch = time.Now(), n
		case <-hb.C:
			w.deadline()
			n, last := w.writeQueued(0, 0)
			if last == 0 {
				w.lw.lineString("PING")
				if !w.flush() {
					return
				}
				continue
			}
			if !w.endBatch(n, last) {
				return
			}
		case <-c.retire:
			w.retire()
			return
		case <-c.closed:
			return
		}
	}
}

// writeQueued writes every queued change after the n lines of a batch
// written so far, the latest of which had Seq last, and returns the new
// count and latest Seq (changes passed back to their neighbour included).
func (w *writer) writeQueued(n int64, last uint64) (int64, uint64) {
	var passed uint64
	w.batch, passed = w.c.out.take(w.batch)
	for _, it := range w.batch {
		w.lw.lineString(it.line)
		n, last = n+1, it.seq
	}
	return n, max(last, passed)
}

// endBatch ends a batch of n lines with the SEQ of its latest change and
// writes it out; it reports false if the connection failed.
func (w *writer) endBatch(n int64, last uint64) bool {
	w.l.sent.Add(n)
	w.seqBuf = strconv.AppendUint(append(w.seqBuf[:0], "SEQ "...), last, 10)
	w.lw.line(w.seqBuf)
	return w.flush()
}

// retire tells the neighbour that c is a duplicate and closes it.
func (w *writer) retire() {
	w.c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	w.lw.lineString("DUPLICATE")
	w.lw.w.Flush()
	w.c.close(CloseReplaced, "replaced by a newer connection")
}

// coalesce is the shortest time between two writes of a busy link.
const coalesce = 600 * time.Microsecond

// countingWriter counts the bytes written through it and keeps the first
// error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
