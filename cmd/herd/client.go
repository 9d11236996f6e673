package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"herd/internal/pki"
	"herd/internal/protocol"
)

const clientAbout = `Talk to a herd server.

  herd client [flags] 'LINE' ['LINE'…]     send protocol lines, print the replies
  herd client [flags] iamat ID [LOCATION]   report ID's location (default UCLA) at the current time
  herd client [flags] whatsat ID RADIUS BOUND
                                           places within RADIUS km of ID, as a table
  herd client [flags]                      interactive on a terminal (help lists the commands);
                                           otherwise lines are read from standard input

A WHATSAT reply ends at its blank line. LOCATION is ISO 6709, e.g. +34.068930-118.445127.

Exit status: 0 when every line was answered; 1 when any line was answered
with "? " (the server found it invalid) or the connection failed; 2 for bad
usage. The interactive prompt reconnects when the server closes the connection.

Examples:
  herd client -server Goloman iamat kiwi.cs.ucla.edu
  herd client -server Welsh whatsat kiwi.cs.ucla.edu 10 5
  herd client -addr 127.0.0.1:12000 'IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503'`

// defaultLocation is where `iamat` puts a client when no location is given.
const defaultLocation = "+34.068930-118.445127"

func runClient(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "client", "[LINE… | iamat … | whatsat …]", clientAbout)
	addr := fs.String("addr", "", "server address HOST:PORT")
	server := fs.String("server", "", "server NAME from the config (default: the first server)")
	cfgPath := fs.String("config", "", "config file used by -server (TOML)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the connection and for each reply")
	raw := fs.Bool("json", false, "print WHATSAT replies as the server sent them, not as a table")
	useTLS := fs.Bool("tls", false, "speak TLS to the server (its [client.tls])")
	caFile := fs.String("ca", "", "with -tls: the CA certificate that signed the server's (default: the system's roots)")
	serverName := fs.String("tls-name", "", "with -tls: the name the server's certificate must carry (default: the host part of the address)")
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
				return usagef("no server named %q in %s (servers are %s)", *server, cfg.Source(), strings.Join(cfg.Names(), ", "))
			}
		}
		target = s.Addr
	}
	// Shortcuts are checked before connecting, so usage errors come first.
	var lines []string
	pretty := false
	rest := fs.Args()
	if len(rest) > 0 && (rest[0] == "iamat" || rest[0] == "whatsat") {
		line, err := shortcut(rest, time.Now())
		if err != nil {
			return usageError{err}
		}
		lines, pretty = []string{line}, rest[0] == "whatsat" && !*raw
	} else {
		lines = rest
	}
	if !*useTLS && (*caFile != "" || *serverName != "") {
		return usagef("-ca and -tls-name need -tls")
	}
	c := &lineClient{out: e.stdout, timeout: *timeout, pretty: pretty, target: target,
		dial: func() (net.Conn, error) { return dialClient(ctx, target, *timeout, *useTLS, *caFile, *serverName) }}
	if err := c.connect(); err != nil {
		return err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { c.interrupt() }) // Ctrl-C while waiting
	defer stop()
	if len(lines) > 0 {
		for _, line := range lines {
			if err := c.roundTrip(line); err != nil {
				return err
			}
		}
		return c.refusedErr()
	}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return c.interactive(f, *raw)
	}
	in := bufio.NewScanner(e.stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		if err := c.roundTrip(in.Text()); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return err
	}
	return c.refusedErr()
}

// dialClient connects to target, over TLS when useTLS (verified against
// caFile, or the system's roots, for serverName or the address's host).
func dialClient(ctx context.Context, target string, timeout time.Duration, useTLS bool, caFile, serverName string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w (is the herd running? start it with `herd up`)", target, err)
	}
	if !useTLS {
		return nc, nil
	}
	if serverName == "" {
		serverName, _, _ = net.SplitHostPort(target)
	}
	cfg, err := pki.DialConfig(caFile, serverName)
	if err != nil {
		nc.Close()
		return nil, usagef("-ca: %v", err)
	}
	tc := tls.Client(nc, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS with %s: %w", target, err)
	}
	return tc, nil
}

// shortcut turns `iamat ID [LOCATION]` or `whatsat ID RADIUS BOUND` into a
// protocol line, checking it as a server would.
func shortcut(args []string, now time.Time) (string, error) {
	var line string
	switch args[0] {
	case "iamat":
		if len(args) < 2 || len(args) > 3 {
			return "", errors.New("usage: iamat ID [LOCATION]")
		}
		loc := defaultLocation
		if len(args) == 3 {
			loc = args[2]
		}
		line = fmt.Sprintf("IAMAT %s %s %d.%09d", args[1], loc, now.Unix(), now.Nanosecond())
	case "whatsat":
		if len(args) != 4 {
			return "", errors.New("usage: whatsat ID RADIUS BOUND")
		}
		line = fmt.Sprintf("WHATSAT %s %s %s", args[1], args[2], args[3])
	default:
		return "", fmt.Errorf("unknown shortcut %q", args[0])
	}
	if _, err := protocol.Parse([]byte(line)); err != nil {
		return "", fmt.Errorf("%s: %v", args[0], err)
	}
	return line, nil
}

// errServerClosed is what exchange returns when the server closed or
// reset the connection; errNotConnected, when a reconnection had failed.
var (
	errServerClosed = errors.New("the server closed the connection")
	errNotConnected = errors.New("not connected")
)

// lineClient sends one line at a time and reads its whole reply.
type lineClient struct {
	target  string
	dial    func() (net.Conn, error)
	out     io.Writer
	timeout time.Duration
	pretty  bool // show WHATSAT replies as a table
	refused int  // lines answered with "? "

	mu sync.Mutex // guards nc against interrupt; r is used by the calling goroutine only
	nc net.Conn   // nil after the connection was lost and before the next connect
	r  *bufio.Reader
}

// connect dials the server, replacing any connection the client had.
func (c *lineClient) connect() error {
	nc, err := c.dial()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
	}
	c.nc, c.r = nc, bufio.NewReader(nc)
	return nil
}

// close closes the connection, if any.
func (c *lineClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// interrupt ends a wait for the server at once.
func (c *lineClient) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.SetDeadline(time.Now())
	}
}

// refusedErr is the error that makes `herd client` exit 1 when the server
// answered any line with "? ".
func (c *lineClient) refusedErr() error {
	switch c.refused {
	case 0:
		return nil
	case 1:
		return errors.New("1 line was answered with \"? \" (the server found it invalid)")
	}
	return fmt.Errorf("%d lines were answered with \"? \" (the server found them invalid)", c.refused)
}

func (c *lineClient) roundTrip(line string) error {
	reply, err := c.exchange(line)
	if err != nil {
		return err
	}
	if strings.HasPrefix(reply, "? ") {
		c.refused++
	}
	if c.pretty && strings.HasPrefix(reply, "AT ") && strings.Contains(reply, "\n{") {
		return printPlaces(c.out, reply)
	}
	_, err = io.WriteString(c.out, reply)
	return err
}

// exchange sends line and returns its reply, all of it.
func (c *lineClient) exchange(line string) (string, error) {
	line = strings.TrimRight(line, "\r\n")
	if c.nc == nil {
		return "", errNotConnected
	}
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.nc, line+"\n"); err != nil {
		if closedByPeer(err) {
			return "", errServerClosed
		}
		return "", fmt.Errorf("send: %w", err)
	}
	first, err := c.r.ReadString('\n')
	if err != nil {
		return "", readErr(err)
	}
	f := strings.Fields(line)
	if !strings.HasPrefix(first, "AT ") || len(f) == 0 || f[0] != "WHATSAT" {
		return first, nil
	}
	// A WHATSAT reply: JSON lines up to and including the blank line.
	var b strings.Builder
	b.WriteString(first)
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return "", readErr(err)
		}
		b.WriteString(l)
		if l == "\n" {
			return b.String(), nil
		}
	}
}

// closedByPeer reports whether err means the server closed or reset the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func readErr(err error) error {
	if closedByPeer(err) {
		return errServerClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("no reply in time (see -timeout)")
	}
	return fmt.Errorf("reading reply: %w", err)
}

// printPlaces shows a WHATSAT reply as the AT line and a table of places
// with their distance from the client.
func printPlaces(w io.Writer, reply string) error {
	atLine, body, _ := strings.Cut(reply, "\n")
	at, err := protocol.ParseAT([]byte(atLine))
	if err != nil {
		_, err := io.WriteString(w, reply)
		return err
	}
	var resp struct {
		Status       string `json:"status"`
		ErrorMessage string `json:"error_message"`
		Results      []struct {
			Name     string   `json:"name"`
			Vicinity string   `json:"vicinity"`
			Types    []string `json:"types"`
			Geometry struct {
				Location struct{ Lat, Lng float64 } `json:"location"`
			} `json:"geometry"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		_, err := io.WriteString(w, reply)
		return err
	}
	fmt.Fprintf(w, "%s is at %s (told %s, time difference %ss)\n", at.Client, at.Loc, at.Server, at.Diff)
	if resp.Status != "OK" {
		fmt.Fprintf(w, "places: %s %s\n", resp.Status, resp.ErrorMessage)
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tplace\tdistance\tvicinity\ttypes")
	for i, r := range resp.Results {
		d := haversineKm(at.Lat, at.Lng, r.Geometry.Location.Lat, r.Geometry.Location.Lng)
		fmt.Fprintf(tw, "%d\t%s\t%.2f km\t%s\t%s\n", i+1, r.Name, d, r.Vicinity, strings.Join(r.Types, ", "))
	}
	return tw.Flush()
}

func haversineKm(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371.0088
	rad := math.Pi / 180
	dl := (lat2 - lat1) * rad
	dg := (lng2 - lng1) * rad
	a := math.Sin(dl/2)*math.Sin(dl/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dg/2)*math.Sin(dg/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

const interactiveHelp = `Type protocol lines (IAMAT …, WHATSAT …) or:
  iamat ID [LOCATION]         report ID's location (default UCLA) at the current time
  whatsat ID RADIUS BOUND     places near ID, as a table (raw JSON with -json)
  help                        this text
  quit                        leave (or Ctrl-D)
Up and down arrows recall earlier lines.
`

// interactive runs a prompt with line editing and history on the terminal.
func (c *lineClient) interactive(f *os.File, raw bool) error {
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return err
	}
	defer term.Restore(int(f.Fd()), old)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{f, os.Stdout}, "herd> ")
	return c.prompt(t, t, raw)
}

// prompt reads commands from in until quit or end of input, and writes
// the replies and messages to w. When the server has closed the
// connection (its idle timeout, a restart), it says so, reconnects and
// sends the line again: IAMAT and WHATSAT may be repeated safely.
func (c *lineClient) prompt(in interface{ ReadLine() (string, error) }, w io.Writer, raw bool) error {
	c.out = w
	fmt.Fprintf(w, "connected to %s; type help for the commands\n", c.target)
	for {
		line, err := in.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		c.pretty = false
		switch fields[0] {
		case "help", "?":
			io.WriteString(w, interactiveHelp)
			continue
		case "quit", "exit":
			return nil
		case "iamat", "whatsat":
			l, err := shortcut(fields, time.Now())
			if err != nil {
				fmt.Fprintln(w, err)
				continue
			}
			line, c.pretty = l, fields[0] == "whatsat" && !raw
		}
		err = c.roundTrip(line)
		if errors.Is(err, errServerClosed) || errors.Is(err, errNotConnected) {
			fmt.Fprintf(w, "%v; reconnecting to %s\n", err, c.target)
			c.close()
			if err := c.connect(); err != nil {
				fmt.Fprintf(w, "%v\n(the next line tries again)\n", err)
				continue
			}
			fmt.Fprintf(w, "reconnected to %s\n", c.target)
			err = c.roundTrip(line)
		}
		if errors.Is(err, errServerClosed) {
			fmt.Fprintf(w, "%v\n(the next line reconnects)\n", err)
			c.close()
			continue
		}
		if err != nil {
			return err
		}
	}
}
