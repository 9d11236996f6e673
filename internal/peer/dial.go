package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"time"
)

// dialLoop keeps one neighbour connected: it dials at once, waits while the
// link is up, and redials with capped, jittered back-off while it is down.
func (m *Manager) dialLoop(l *link) {
	defer m.wg.Done()
	const base = 20 * time.Millisecond
	wait := time.Duration(0)
	failures := 0
	for l.ctx.Err() == nil {
		if c := l.current(); c != nil {
			select {
			case <-c.closed:
				// Redial at once, unless the neighbour closed it as a
				// duplicate: then its own connection is on the way.
				wait, failures = 0, 0
				if c.dup.Load() {
					wait = 100 * time.Millisecond
				}
				continue
			case <-l.ctx.Done():
				return
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait/2 + rand.N(wait/2+1))
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			}
		}
		if l.current() != nil {
			continue
		}
		err := m.dialOnce(l)
		if err == nil {
			wait, failures = 0, 0
			continue
		}
		if l.ctx.Err() != nil {
			return
		}
		failures++
		// Log the first failure and then every 30th, so a long outage does not flood the log.
		if failures == 1 || failures%30 == 0 {
			m.log.Info("cannot reach neighbour", "peer", l.peer, "addr", l.dialAddr(), "err", err.Error(), "attempts", failures)
		}
		wait = min(max(2*wait, base), m.cfg.RetryMax.D)
	}
}

// dialOnce connects, handshakes and, on success, starts serving the link in
// new goroutines.
func (m *Manager) dialOnce(l *link) error {
	addr := l.dialAddr()
	ctx, cancel := context.WithTimeout(l.ctx, m.cfg.DialTimeout.D)
	nc, err := m.dial(ctx, addr)
	cancel()
	if err != nil {
		return err
	}
	if m.auth.TLS != nil {
		tc := tls.Client(nc, m.auth.TLS.ClientConfig(l.peer))
		ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			nc.Close()
			l.refused.Add(1)
			m.noteDialRefusal(l, &refusedError{reason: RefuseCredential, msg: "TLS handshake: " + err.Error()})
			return err
		}
		nc = tc
	}
	r := bufio.NewReaderSize(nc, handshakeBufSize)
	key, err := m.dialHandshake(nc, r, l.peer)
	if err != nil {
		nc.Close()
		l.refused.Add(1)
		m.noteDialRefusal(l, err)
		return err
	}
	if !m.track() {
		nc.Close()
		return nil
	}
	// Attached here, not in the serving goroutine, so the dial loop sees
	// the link up and does not dial a second connection.
	c := m.attach(l, nc, r, m.name, key)
	if c == nil {
		m.wg.Done()
		return nil
	}
	go func() {
		defer m.wg.Done()
		m.serve(l, c)
	}()
	return nil
}

// noteDialRefusal counts and logs (at most once a minute per neighbour) a
// dial whose handshake failed.
func (m *Manager) noteDialRefusal(l *link, err error) {
	code := RefuseMalformed
	var re *refusedError
	if errors.As(err, &re) {
		code = re.reason
	}
	if m.refused.note(code, "dial:"+l.peer, time.Now()) {
		m.log.Warn("peer handshake failed", "peer", l.peer, "addr", l.dialAddr(), "reason", code.String(), "err", err.Error())
	}
}

// dialAddr is where the link's neighbour is dialed now.
func (l *link) dialAddr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addr
}
