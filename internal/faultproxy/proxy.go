// Package faultproxy is a loopback TCP proxy for tests that injects network
// faults between two endpoints: cut (refuse and drop connections), reset,
// black-hole (accept and swallow bytes), delay, and rewriting what passes
// (a man in the middle).
package faultproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

// The modes.
const (
	Pass      Mode = iota // forward both ways
	Cut                   // close every connection; new ones are closed at once
	BlackHole             // accept, read and discard; forward nothing either way
)

// Proxy listens on 127.0.0.1 and forwards to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  Mode              // guarded by mu
	delay time.Duration     // guarded by mu: added before forwarding each chunk
	hook  Hook              // guarded by mu: rewrites forwarded chunks; nil: none
	conns map[net.Conn]bool // guarded by mu: both sides of live pairs
	wg    sync.WaitGroup
}

// New starts a proxy to target on a free loopback port.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetTarget changes where new connections are forwarded.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the mode. Cut and BlackHole drop every live connection
// (Cut with a reset, so both ends notice at once).
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	var drop []net.Conn
	if m != Pass {
		for c := range p.conns {
			drop = append(drop, c)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		reset(c)
	}
}

// Hook rewrites one chunk read from one side before it is forwarded: up is
// true for bytes from the connecting side toward the target. It returns what
// to forward (b itself, a changed copy, or more bytes).
type Hook func(up bool, b []byte) []byte

// SetHook makes every forwarded chunk pass through h (nil: none).
func (p *Proxy) SetHook(h Hook) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

// SetDelay delays each forwarded chunk by d.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Reset resets every live connection; new ones are still accepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	var drop []net.Conn
	for c := range p.conns {
		drop = append(drop, c)
	}
	p.mu.Unlock()
	for _, c := range drop {
		reset(c)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode, target := p.mode, p.target
		p.mu.Unlock()
		switch mode {
		case Cut:
			reset(in)
			continue
		case BlackHole:
			p.track(in)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				io.Copy(io.Discard, in)
				p.untrack(in)
			}()
			continue
		}
		out, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			reset(in)
			continue
		}
		p.track(in)
		p.track(out)
		p.wg.Add(2)
		go p.pipe(in, out, true)
		go p.pipe(out, in, false)
	}
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// pipe copies src to dst until either fails, then closes both; up says
// which way it copies (for the hook).
func (p *Proxy) pipe(src, dst net.Conn, up bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d, mode, hook := p.delay, p.mode, p.hook
			p.mu.Unlock()
			if mode != Pass {
				break
			}
			if d > 0 {
				time.Sleep(d) // the fault being injected, not synchronisation
			}
			out := buf[:n]
			if hook != nil {
				out = hook(up, out)
			}
			if _, werr := dst.Write(out); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.untrack(src)
	p.untrack(dst)
}
