package herd

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// served checks that a fresh client still gets an answer.
func served(t *testing.T, addr string) {
	t.Helper()
	if got := ask(t, addr, "IAMAT bystander +1+1 1"); !strings.HasPrefix(got, "AT ") {
		t.Fatalf("a well-behaved client got %q", got)
	}
}

// closedByServer reads until the server closes the connection, which must
// happen before the client's own deadline.
func closedByServer(t *testing.T, c *client, what string) {
	t.Helper()
	_, err := io.Copy(io.Discard, c.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: the server did not close the connection", what)
		}
		t.Fatalf("%s: %v", what, err)
	}
}

func TestGarbageAndInvalidUTF8(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	addr := h.Member("Goloman").ClientAddr
	c := dial(t, addr)
	garbage := "\x00\x01\xfe\xff binary\x7f\n"
	c.send(garbage, "IAMAT \xc3\x28 +1+1 1\n", "IAMAT ok +1+1 1\n")
	if got := c.line(); got != "? \x00\x01\xfe\xff binary\x7f\n" {
		t.Fatalf("garbage answered %q", got)
	}
	if got := c.line(); got != "? IAMAT \xc3\x28 +1+1 1\n" {
		t.Fatalf("invalid UTF-8 answered %q", got)
	}
	if got := c.line(); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("the connection is no longer usable: %q", got)
	}
	served(t, addr)
}

func TestSlowAndSilentClientsAreClosed(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Client.IdleTimeout.D = 300 * time.Millisecond
	h := startHerd(t, cfg, nil)
	addr := h.Member("Hands").ClientAddr
	// Slowloris: a byte now and then never completes a line; the deadline
	// is per line, so trickling does not extend it.
	slow := dial(t, addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("IAMAT slow") {
			if _, err := slow.nc.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-time.After(100 * time.Millisecond): // the trickle being tested
			case <-t.Context().Done():
				return
			}
		}
	}()
	idle := dial(t, addr)
	closedByServer(t, slow, "slowloris")
	closedByServer(t, idle, "idle client")
	<-done
	served(t, addr)
}

func TestClientThatNeverReads(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Client.WriteTimeout.D = 300 * time.Millisecond
	// Once the kernel's buffers are full both ways, TCP may leave the
	// server with nothing to read and nothing it can write: then the idle
	// timeout is what ends the connection.
	cfg.Client.IdleTimeout.D = time.Second
	h := startHerd(t, cfg, nil)
	addr := h.Member("Holiday").ClientAddr
	ask(t, addr, "IAMAT big +1+1 1")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096)
	// Ask for many WHATSAT replies and never read them: the socket buffers
	// fill, the write deadline passes, the server gives up on this client.
	// Other connections do not matter: the test watches this one's TCP state.
	go func() {
		line := []byte(strings.Repeat("WHATSAT big 10 20\n", 200))
		for range 5000 { // far more than socket buffers and the pipeline hold
			if _, err := nc.Write(line); err != nil {
				return
			}
		}
	}()
	waitFor(t, 15*time.Second, "the server to close the connection of the client that does not read", func() bool {
		return closedByPeer(t, nc)
	})
	served(t, addr)
}

func TestConnectionCap(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Client.MaxConns = 3
	h := startHerd(t, cfg, nil)
	// Welsh's client port also carries its link with Holiday, which holds
	// one of the slots; fill the rest with idle clients.
	welsh := h.Member("Welsh")
	var held []*client
	waitFor(t, 5*time.Second, "the cap to be reached", func() bool {
		c := dial(t, welsh.ClientAddr)
		c.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.r.Peek(1)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return true // closed at once: over the cap
		}
		c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		held = append(held, c)
		return false
	})
	if len(held) > cfg.Client.MaxConns {
		t.Fatalf("held %d connections over a cap of %d", len(held), cfg.Client.MaxConns)
	}
	for _, c := range held {
		c.nc.Close()
	}
	// The count excludes the peer link that also holds a slot on this port.
	waitFor(t, 5*time.Second, "the held connections to close", func() bool { return welsh.Metrics.Counts()["conns_open"] == 0 })
	served(t, welsh.ClientAddr)
}

// closedByPeer reports whether the other end has closed (FIN) or reset nc,
// from the kernel's TCP state of the socket.
func closedByPeer(t *testing.T, nc net.Conn) bool {
	t.Helper()
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var state uint8
	var serr error
	raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if serr == nil {
			state = info.State
		}
	})
	if serr != nil {
		t.Fatal(serr)
	}
	const tcpClose, tcpCloseWait = 7, 8 // include/net/tcp_states.h
	return state == tcpClose || state == tcpCloseWait
}
