package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/places"
)

// gateFinder answers WHATSAT once its gate is open (nil: at once).
type gateFinder struct{ gate chan struct{} }

var _ places.Finder = (*gateFinder)(nil)

func (f *gateFinder) Nearby(ctx context.Context, q places.Query) (*places.Response, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	res, _ := json.Marshal(map[string]any{"name": "a place"})
	return &places.Response{Status: places.StatusOK, Results: []json.RawMessage{res}}, nil
}

// recv is the fixed receive time of the test server's clock.
var recv = time.Unix(1621464828, 0)

// serve starts a Server on 127.0.0.1 with client limits cl and returns its
// address and table.
func serve(t *testing.T, cl config.ClientConfig, f places.Finder) (string, *location.Table) {
	t.Helper()
	def := config.Default().Client
	if cl.MaxLineBytes == 0 {
		cl.MaxLineBytes = def.MaxLineBytes
	}
	if cl.MaxConns == 0 {
		cl.MaxConns = def.MaxConns
	}
	if cl.MaxPipeline == 0 {
		cl.MaxPipeline = def.MaxPipeline
	}
	if f == nil {
		f = &gateFinder{}
	}
	table := location.NewTable()
	s := New(Options{Name: "Goloman", Client: cl, PlacesTimeout: 5 * time.Second, Table: table, Finder: f, Now: func() time.Time { return recv }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String(), table
}

// exchange sends in, half-closes, and returns everything the server sent
// until it closed.
func exchange(t *testing.T, addr, in string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, in)
	nc.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // a server that closes on unread input resets
		t.Fatalf("reading: %v (got %q)", err, out)
	}
	return string(out)
}

const iamat = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

func TestFraming(t *testing.T) {
	addr, _ := serve(t, config.ClientConfig{}, nil)
	at := "AT Goloman +0.040501497 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
	tests := map[string]struct{ in, want string }{
		"IAMAT":                   {iamat + "\n", at},
		"CR LF":                   {iamat + "\r\n", at},
		"last line without LF":    {iamat, at},
		"invalid, echoed exactly": {"IAMAT  kiwi\t+1+1\r\n", "? IAMAT  kiwi\t+1+1\n"},
		"empty line":              {"\n", "? \n"},
		"unknown client":          {"WHATSAT nobody 10 5\n", "? WHATSAT nobody 10 5\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := exchange(t, addr, tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("WHATSAT", func(t *testing.T) {
		got := exchange(t, addr, "WHATSAT kiwi.cs.ucla.edu 10 1\n")
		if !strings.HasPrefix(got, at) || !strings.HasSuffix(got, "}\n\n") || strings.Contains(got[len(at):len(got)-2], "\n\n") {
			t.Fatalf("WHATSAT reply %q: want the AT line, the JSON without blank lines, and one blank line", got)
		}
	})
}

// TestPipelineOrder: a slow WHATSAT holds back the replies after it, but
// not the commands: the IAMAT behind it is stored before it is answered.
func TestPipelineOrder(t *testing.T) {
	gate := make(chan struct{})
	addr, table := serve(t, config.ClientConfig{}, &gateFinder{gate: gate})
	exchange(t, addr, iamat+"\n")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, "WHATSAT kiwi.cs.ucla.edu 10 1\nIAMAT behind +1+1 1\nbogus\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := table.Get("behind"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the IAMAT behind a waiting WHATSAT was not stored")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	r := bufio.NewReader(nc)
	var lines []string
	for len(lines) == 0 || lines[len(lines)-1] != "? bogus\n" {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, l)
	}
	n := len(lines)
	if !strings.HasPrefix(lines[0], "AT Goloman ") || lines[n-3] != "\n" || !strings.HasPrefix(lines[n-2], "AT Goloman ") || !strings.Contains(lines[n-2], " behind ") {
		t.Fatalf("replies out of order: %q", lines)
	}
}

func TestLimits(t *testing.T) {
	t.Run("line too long closes", func(t *testing.T) {
		addr, _ := serve(t, config.ClientConfig{MaxLineBytes: 64}, nil)
		got := exchange(t, addr, iamat+"\n"+strings.Repeat("x", 100)+"\n"+iamat+"\n")
		if strings.Count(got, "AT Goloman") > 1 {
			t.Fatalf("got %q: want at most the first reply, then the connection closed", got)
		}
	})
	t.Run("one_shot", func(t *testing.T) {
		addr, _ := serve(t, config.ClientConfig{OneShot: true}, nil)
		if got := exchange(t, addr, iamat+"\n"+iamat+"\n"); strings.Count(got, "\n") != 1 {
			t.Fatalf("got %q: want one reply", got)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		addr, _ := serve(t, config.ClientConfig{IdleTimeout: config.Duration{D: 100 * time.Millisecond}}, nil)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("a silent connection got data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the idle connection was not closed within 10s")
		}
	})
	t.Run("max_conns", func(t *testing.T) {
		addr, _ := serve(t, config.ClientConfig{MaxConns: 1}, nil)
		hold, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		io.WriteString(hold, iamat+"\n")
		bufio.NewReader(hold).ReadString('\n') // the slot is taken
		if got := exchange(t, addr, iamat+"\n"); got != "" {
			t.Fatalf("a connection over max_conns got %q", got)
		}
	})
}

// TestSetClient: new limits apply to connections opened after the change.
func TestSetClient(t *testing.T) {
	table := location.NewTable()
	cl := config.Default().Client
	s := New(Options{Name: "Goloman", Client: cl, PlacesTimeout: time.Second, Table: table, Finder: &gateFinder{}, Now: func() time.Time { return recv }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	cl.OneShot = true
	s.SetClient(cl)
	if got := exchange(t, ln.Addr().String(), iamat+"\n"+iamat+"\n"); strings.Count(got, "\n") != 1 {
		t.Fatalf("got %q: want one reply after one_shot was turned on", got)
	}
}

// countingListener counts the writes to the connections it accepts.
type countingListener struct {
	net.Listener
	writes chan int // one send per Write, with its size
}

func (l countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{nc, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes chan int
}

func (c countingConn) Write(p []byte) (int, error) {
	select {
	case c.writes <- len(p):
	default:
	}
	return c.Conn.Write(p)
}

// TestRepliesBatched: the replies to commands that arrive together go out
// in one write, and a reply is not held back for a line that has not
// fully arrived.
func TestRepliesBatched(t *testing.T) {
	table := location.NewTable()
	s := New(Options{Name: "Goloman", Client: config.Default().Client, PlacesTimeout: 5 * time.Second, Table: table, Finder: &gateFinder{}, Now: func() time.Time { return recv }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes := make(chan int, 64)
	go s.Serve(countingListener{ln, writes})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	readLines := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "AT Goloman ") {
				t.Fatalf("reply %d: %q, %v", i, l, err)
			}
		}
	}
	io.WriteString(nc, "IAMAT a +1+1 1\nIAMAT b +1+1 1\nIAMAT c +1+1 1\n")
	readLines(3)
	if n := len(writes); n != 1 {
		t.Fatalf("3 replies to commands that arrived together took %d writes, want 1", n)
	}
	<-writes
	// The second line is incomplete: the first reply must not wait for it.
	io.WriteString(nc, "IAMAT d +1+1 1\nIAMAT e +1")
	readLines(1)
	io.WriteString(nc, "+1 1\n")
	readLines(1)
}
