package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Mode is how the client uses connections.
type Mode string

// The connection modes.
const (
	// Oneshot opens a connection per request, writes the line, closes its
	// sending side and reads the reply until the server closes: how course
	// graders talk to a herd, and the only mode a one_shot herd answers.
	Oneshot Mode = "oneshot"
	// Keepalive sends request after request on long-lived connections;
	// with Options.Pipeline > 1, several requests are in flight on each.
	Keepalive Mode = "keepalive"
)

// Modes lists the valid connection modes.
var Modes = []Mode{Oneshot, Keepalive}

// maxReply is the longest reply read; a longer one is an error.
const maxReply = 1 << 20

// readBufSize is the size of a keepalive connection's read buffer.
const readBufSize = 64 << 10

// errTooLong is returned for a reply longer than maxReply.
var errTooLong = fmt.Errorf("reply longer than %d bytes", maxReply)

// exchanger sends one line and returns its whole reply. The reply is valid
// until the next call. It is not safe for concurrent use.
type exchanger interface {
	exchange(ctx context.Context, target int, line []byte, whatsat bool) ([]byte, error)
	// reset drops any connection, for example after a wrong reply when the
	// stream can no longer be trusted.
	reset()
	close()
}

// newExchanger returns an exchanger of the given mode over targets.
func newExchanger(mode Mode, targets []string, timeout time.Duration) exchanger {
	if mode == Oneshot {
		return &oneshot{targets: targets, timeout: timeout, buf: make([]byte, 0, 4096)}
	}
	return &keepalive{targets: targets, timeout: timeout, conns: make([]*kconn, len(targets))}
}

// oneshot is the Oneshot exchanger.
type oneshot struct {
	targets []string
	timeout time.Duration
	buf     []byte
}

func (o *oneshot) exchange(ctx context.Context, target int, line []byte, _ bool) ([]byte, error) {
	d := net.Dialer{Timeout: o.timeout}
	nc, err := d.DialContext(ctx, "tcp", o.targets[target])
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(o.timeout))
	if _, err := nc.Write(line); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return nil, fmt.Errorf("half-close: %w", err)
		}
	}
	o.buf, err = readAll(nc, o.buf[:0])
	return o.buf, err
}

func (o *oneshot) reset() {}
func (o *oneshot) close() {}

// readAll appends what r sends until EOF to b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			if len(b) >= maxReply {
				return b, errTooLong
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, fmt.Errorf("read: %w", err)
		}
	}
}

// keepalive is the Keepalive exchanger without pipelining: one connection
// per target, dialled when first needed.
type keepalive struct {
	targets []string
	timeout time.Duration
	conns   []*kconn
	scratch []byte
}

// kconn is one kept-alive connection.
type kconn struct {
	nc   net.Conn
	r    *bufio.Reader
	stop func() bool // unregisters the context watcher
}

// dialKeepalive connects to addr; the connection's deadline is set to the
// past when ctx is done, so a blocked read returns.
func dialKeepalive(ctx context.Context, addr string, timeout time.Duration) (*kconn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &kconn{nc: nc, r: bufio.NewReaderSize(nc, readBufSize)}
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(past) })
	return c, nil
}

// past is a deadline that has passed: it makes blocked I/O return.
var past = time.Unix(1, 0)

// setDeadline sets the connection's deadline to t, or to the past when ctx
// is done: the context watcher may have fired just before.
func (c *kconn) setDeadline(ctx context.Context, t time.Time) {
	if ctx.Err() != nil {
		t = past
	}
	c.nc.SetDeadline(t)
}

// setReadDeadline is setDeadline for reads only.
func (c *kconn) setReadDeadline(ctx context.Context, t time.Time) {
	if ctx.Err() != nil {
		t = past
	}
	c.nc.SetReadDeadline(t)
}

func (c *kconn) close() {
	c.stop()
	c.nc.Close()
}

func (k *keepalive) exchange(ctx context.Context, target int, line []byte, whatsat bool) ([]byte, error) {
	c := k.conns[target]
	if c == nil {
		var err error
		if c, err = dialKeepalive(ctx, k.targets[target], k.timeout); err != nil {
			return nil, err
		}
		k.conns[target] = c
	}
	c.setDeadline(ctx, time.Now().Add(k.timeout))
	if _, err := c.nc.Write(line); err != nil {
		k.drop(target)
		return nil, fmt.Errorf("write: %w", err)
	}
	reply, scratch, err := readReply(c.r, whatsat, k.scratch[:0])
	k.scratch = scratch
	if err != nil {
		k.drop(target)
		return nil, err
	}
	return reply, nil
}

func (k *keepalive) drop(target int) {
	if c := k.conns[target]; c != nil {
		c.close()
		k.conns[target] = nil
	}
}

func (k *keepalive) reset() {
	for i := range k.conns {
		k.drop(i)
	}
}

func (k *keepalive) close() { k.reset() }

// readReply reads one whole reply from r: one line, or for a WHATSAT
// answered with an AT line, lines up to and including an empty line. The
// returned reply is either in r's buffer (valid until the next read) or in
// scratch, which is returned for reuse.
func readReply(r *bufio.Reader, whatsat bool, scratch []byte) (reply, _ []byte, err error) {
	line, err := r.ReadSlice('\n')
	if err == nil && (!whatsat || !bytes.HasPrefix(line, []byte("AT"))) {
		return line, scratch, nil
	}
	scratch = append(scratch, line...)
	if scratch, err = finishLine(r, scratch, err); err != nil {
		return nil, scratch, err
	}
	if !whatsat || !bytes.HasPrefix(scratch, []byte("AT")) {
		return scratch, scratch, nil
	}
	for {
		start := len(scratch)
		line, err = r.ReadSlice('\n')
		scratch = append(scratch, line...)
		if scratch, err = finishLine(r, scratch, err); err != nil {
			return nil, scratch, err
		}
		if len(scratch)-start == 1 { // the empty line that ends a WHATSAT reply
			return scratch, scratch, nil
		}
		if len(scratch) > maxReply {
			return nil, scratch, errTooLong
		}
	}
}

// finishLine reads the rest of a line longer than r's buffer into scratch,
// given err from the ReadSlice that returned its start.
func finishLine(r *bufio.Reader, scratch []byte, err error) ([]byte, error) {
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(scratch) > maxReply {
			return scratch, errTooLong
		}
		var line []byte
		line, err = r.ReadSlice('\n')
		scratch = append(scratch, line...)
	}
	if err != nil {
		return scratch, readError(err, len(scratch))
	}
	return scratch, nil
}

// readError describes a failed reply read; got is how many bytes of the
// reply had arrived.
func readError(err error, got int) error {
	if errors.Is(err, io.EOF) {
		if got == 0 {
			return errors.New("the server closed the connection before replying (a one_shot herd needs -mode oneshot)")
		}
		return fmt.Errorf("the server closed the connection after %d bytes of a reply", got)
	}
	return fmt.Errorf("read: %w", err)
}

// isTimeout reports whether err is a deadline or dial timeout.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
