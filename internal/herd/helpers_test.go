package herd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"herd/internal/config"
	"herd/internal/places"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// defaultConfig is the built-in five-server herd on free loopback ports.
func defaultConfig(t testing.TB) *config.Config {
	cfg := config.Default()
	for i := range cfg.Servers {
		cfg.Servers[i].Addr = "127.0.0.1:0"
		cfg.Servers[i].Metrics = "127.0.0.1:0"
	}
	cfg.LogDir = ""
	cfg.Peer.RetryMax = config.Duration{D: 50 * time.Millisecond}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakeFinder answers every query with one result naming the query.
type fakeFinder struct {
	calls atomic.Int64
	fn    func(ctx context.Context, q places.Query) (*places.Response, error)
}

var _ places.Finder = (*fakeFinder)(nil)

func (f *fakeFinder) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	f.calls.Add(1)
	if f.fn != nil {
		return f.fn(ctx, q)
	}
	res, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("near %.6f,%.6f r=%g", q.Lat, q.Lng, q.RadiusM)})
	return &places.Response{Status: places.StatusOK, Results: []json.RawMessage{res, res}}, nil
}

// startHerd starts cfg's herd with finder f (a fakeFinder when nil): see
// startWith.
func startHerd(t testing.TB, cfg *config.Config, f places.Finder) *Herd {
	t.Helper()
	if f == nil {
		f = &fakeFinder{}
	}
	return startWith(t, Options{Config: cfg, NewFinder: func(string) places.Finder { return f }})
}

// startWith starts a herd with o (a fake finder when o has none), closes it
// at cleanup, and waits until every link between its members is up.
func startWith(t testing.TB, o Options) *Herd {
	t.Helper()
	if o.NewFinder == nil {
		f := &fakeFinder{}
		o.NewFinder = func(string) places.Finder { return f }
	}
	h, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A store made to fail (StoreOptions) makes Close report it.
		if err := h.Close(ctx); err != nil && o.StoreOptions == nil {
			t.Errorf("Close: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "links up", func() bool {
		for _, m := range h.Members() {
			for _, l := range m.Peers.Links() {
				if !l.Up && h.Member(l.Peer) != nil {
					return false
				}
			}
		}
		return true
	})
	return h
}

// client is a test client connection.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(strings.Join(lines, ""))); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading reply: %v (got %q)", err, s)
	}
	return s
}

// whatsat reads a whole WHATSAT reply: the AT line, the JSON, the blank line.
func (c *client) whatsatReply() (atLine string, body string) {
	c.t.Helper()
	atLine = c.line()
	var b strings.Builder
	for {
		l := c.line()
		if l == "\n" {
			return atLine, b.String()
		}
		b.WriteString(l)
	}
}

// ask sends one line and returns its one-line reply.
func ask(t testing.TB, addr, line string) string {
	t.Helper()
	c := dial(t, addr)
	c.send(line + "\n")
	return c.line()
}

// known returns the AT line server m holds for client (via its table).
func known(m *Member, clientID string) string {
	r, ok := m.Table.Get(clientID)
	if !ok {
		return ""
	}
	return r.Line
}
