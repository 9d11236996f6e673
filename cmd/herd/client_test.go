package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/herd"
	"herd/internal/places"
	"herd/internal/places/offline"
)

func TestShortcut(t *testing.T) {
	now := time.Unix(1621464827, 959498503)
	tests := map[string]struct {
		args []string
		want string
		bad  bool
	}{
		"iamat default location": {args: []string{"iamat", "kiwi"}, want: "IAMAT kiwi +34.068930-118.445127 1621464827.959498503"},
		"iamat location":         {args: []string{"iamat", "kiwi", "-33.8688+151.2093"}, want: "IAMAT kiwi -33.8688+151.2093 1621464827.959498503"},
		"whatsat":                {args: []string{"whatsat", "kiwi", "10", "5"}, want: "WHATSAT kiwi 10 5"},
		"iamat bad location":     {args: []string{"iamat", "kiwi", "here"}, bad: true},
		"whatsat bad radius":     {args: []string{"whatsat", "kiwi", "99", "5"}, bad: true},
		"whatsat missing bound":  {args: []string{"whatsat", "kiwi", "10"}, bad: true},
		"iamat too many":         {args: []string{"iamat", "a", "+1+1", "x"}, bad: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := shortcut(tt.args, now)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %v as %q", tt.args, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClientAgainstHerd(t *testing.T) {
	cfg := config.Default()
	for i := range cfg.Servers {
		cfg.Servers[i].Addr, cfg.Servers[i].Metrics = "127.0.0.1:0", ""
	}
	cfg.LogDir = ""
	f := offline.New()
	h, err := herd.Start(herd.Options{Config: cfg, NewFinder: func(string) places.Finder { return f }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if _, err := f.Index(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := h.Member("Goloman").ClientAddr

	code, out, errs := runMain(t, "", "client", "-addr", addr, "iamat", "kiwi.cs.ucla.edu")
	if code != exitOK || !strings.HasPrefix(out, "AT Goloman ") || !strings.Contains(out, " kiwi.cs.ucla.edu +34.068930-118.445127 ") {
		t.Fatalf("iamat: %d %q %q", code, out, errs)
	}
	code, out, errs = runMain(t, "", "client", "-addr", addr, "whatsat", "kiwi.cs.ucla.edu", "10", "5")
	if code != exitOK || !strings.Contains(out, "kiwi.cs.ucla.edu is at +34.068930-118.445127 (told Goloman") ||
		!strings.Contains(out, "place") || !strings.Contains(out, " km ") || !strings.Contains(out, "Santa Monica") {
		t.Fatalf("whatsat table: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runMain(t, "", "client", "-addr", addr, "-json", "whatsat", "kiwi.cs.ucla.edu", "10", "1")
	if code != exitOK || !strings.Contains(out, `"status" : "OK"`) || !strings.HasSuffix(out, "}\n\n") {
		t.Fatalf("whatsat -json: %d\n%s", code, out)
	}
	// Lines from standard input, one reply each; a bad line gets "? ",
	// every line is still sent, and the exit status says one was refused.
	code, out, errs = runMain(t, "IAMAT x +1+1 1\nnonsense\nIAMAT y +2+2 2\n", "client", "-addr", addr)
	if code != exitFailure || !strings.HasPrefix(out, "AT Goloman ") || !strings.Contains(out, "\n? nonsense\nAT Goloman ") ||
		!strings.Contains(errs, `1 line was answered with "? "`) {
		t.Fatalf("stdin: %d %q %q", code, out, errs)
	}
	code, out, errs = runMain(t, "IAMAT x +1+1 1\n", "client", "-addr", addr)
	if code != exitOK || !strings.HasPrefix(out, "AT Goloman ") || errs != "" {
		t.Fatalf("stdin, all valid: %d %q %q", code, out, errs)
	}
	code, out, errs = runMain(t, "", "client", "-addr", addr, "WHATSAT nobody 10 5", "nonsense")
	if code != exitFailure || out != "? WHATSAT nobody 10 5\n? nonsense\n" || !strings.Contains(errs, "2 lines were answered") {
		t.Fatalf("lines: %d %q %q", code, out, errs)
	}
	code, _, errs = runMain(t, "", "client", "-addr", addr, "whatsat", "kiwi.cs.ucla.edu", "100", "5")
	if code != exitUsage || !strings.Contains(errs, "whatsat: bad radius") {
		t.Fatalf("bad shortcut: %d %q", code, errs)
	}
}

// lineSource stands in for the terminal: it hands out lines, then io.EOF.
type lineSource []string

func (l *lineSource) ReadLine() (string, error) {
	if len(*l) == 0 {
		return "", io.EOF
	}
	line := (*l)[0]
	*l = (*l)[1:]
	return line, nil
}

// TestPromptReconnects: a server that answers one line per connection and
// then closes it; the prompt says it reconnects and sends the line again.
func TestPromptReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan int, 1)
	go func() {
		n := 0
		defer func() { served <- n }()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			line, err := bufio.NewReader(nc).ReadString('\n')
			if err == nil {
				n++
				fmt.Fprintf(nc, "? %s", line)
			}
			nc.Close()
		}
	}()
	addr := ln.Addr().String()
	c := &lineClient{target: addr, timeout: 10 * time.Second,
		dial: func() (net.Conn, error) { return net.Dial("tcp", addr) }}
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	in := lineSource{"first", "second", "third"}
	if err := c.prompt(&in, &out, false); err != nil {
		t.Fatalf("prompt: %v\n%s", err, out.String())
	}
	c.close()
	ln.Close()
	if n := <-served; n != 3 {
		t.Errorf("server answered %d lines, want 3", n)
	}
	got := out.String()
	for _, want := range []string{"? first\n", "? second\n", "? third\n",
		"the server closed the connection; reconnecting to " + addr + "\nreconnected to " + addr + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "reconnected"); n != 2 {
		t.Errorf("reconnected %d times, want 2:\n%s", n, got)
	}
}

// TestPromptServerGone: when the server is gone for good, the prompt says
// so and keeps reading lines instead of exiting.
func TestPromptServerGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	c := &lineClient{target: addr, timeout: 10 * time.Second,
		dial: func() (net.Conn, error) { return net.Dial("tcp", addr) }}
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}
	defer c.close()
	(<-accepted).Close()
	ln.Close()
	var out strings.Builder
	in := lineSource{"IAMAT a +1+1 1", "IAMAT b +1+1 1", "help"}
	if err := c.prompt(&in, &out, false); err != nil {
		t.Fatalf("prompt: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "reconnecting to "+addr) || !strings.Contains(got, "connection refused") ||
		!strings.Contains(got, "(the next line tries again)") || !strings.Contains(got, "not connected; reconnecting to "+addr) ||
		!strings.Contains(got, "Type protocol lines") {
		t.Fatalf("output:\n%s", got)
	}
}
