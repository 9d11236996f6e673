package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

func runClient(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "client", "[LINE…]", "Send lines to a herd server and print the replies. Each LINE argument is\none line; without arguments, lines are read from standard input.\nA WHATSAT reply ends at its blank line.\n\nExample:\n  herd client -server Goloman 'IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503'")
	addr := fs.String("addr", "", "server address HOST:PORT")
	server := fs.String("server", "", "server NAME from the config (default: the first server)")
	cfgPath := fs.String("config", "", "config file used by -server (TOML)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the connection and for each reply")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *addr != "" && *server != "" {
		return usagef("give -addr or -server, not both")
	}
	target := *addr
	if target == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		s := cfg.Servers[0]
		if *server != "" {
			var ok bool
			if s, ok = cfg.Server(*server); !ok {
				return usagef("no server named %q in %s (servers are %s)", *server, describe(cfg), strings.Join(cfg.Names(), ", "))
			}
		}
		target = s.Addr
	}
	d := net.Dialer{Timeout: *timeout}
	nc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w (is the herd running? start it with `herd up`)", target, err)
	}
	defer nc.Close()
	go func() { // Ctrl-C while waiting for a reply
		<-ctx.Done()
		nc.SetDeadline(time.Now())
	}()
	c := &lineClient{nc: nc, r: bufio.NewReader(nc), out: e.stdout, timeout: *timeout}
	if fs.NArg() > 0 {
		for _, line := range fs.Args() {
			if err := c.roundTrip(line); err != nil {
				return err
			}
		}
		return nil
	}
	in := bufio.NewScanner(e.stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		if err := c.roundTrip(in.Text()); err != nil {
			return err
		}
	}
	return in.Err()
}

// lineClient sends one line at a time and reads its whole reply.
type lineClient struct {
	nc      net.Conn
	r       *bufio.Reader
	out     io.Writer
	timeout time.Duration
}

func (c *lineClient) roundTrip(line string) error {
	line = strings.TrimRight(line, "\r\n")
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.nc, line+"\n"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	first, err := c.r.ReadString('\n')
	if err != nil {
		return readErr(err)
	}
	io.WriteString(c.out, first)
	f := strings.Fields(line)
	if !strings.HasPrefix(first, "AT ") || len(f) == 0 || f[0] != "WHATSAT" {
		return nil
	}
	// A WHATSAT reply: JSON lines up to and including the blank line.
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return readErr(err)
		}
		io.WriteString(c.out, l)
		if l == "\n" {
			return nil
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the server closed the connection")
	}
	return fmt.Errorf("reading reply: %w", err)
}
