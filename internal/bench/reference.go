package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"herd/internal/protocol"
)

// ReferenceOptions shape the replies of a Reference server.
type ReferenceOptions struct {
	// Name is the server name in its AT lines; default "Reference". Bench
	// passes the herd's own, so that replies have the herd's size.
	Name string
	// PlacesJSON is the JSON object answered after the AT line of every
	// WHATSAT; default the first 5 results of SampleNearbyJSON.
	PlacesJSON []byte
}

// Reference is the ceiling a herd is measured against: a trivial line
// server that answers each line at once, without parsing, timekeeping,
// state, logging or peers. It answers
//
//	IAMAT <rest>    with  AT <name> +0.000000000 <rest>
//	WHATSAT <c> ... with  AT <name> +0.000000000 <c> <fixed location> <fixed time>,
//	                      the fixed JSON object and an empty line
//	GEOADD ...      with  :1 and CR LF, as Redis answers (the Redis workload)
//	anything else   with  ? <the line>
//
// so its replies have the size of a herd's and pass the same checks; the
// only per-request work is copying the request's fields. Like a herd, it
// answers pipelined lines in order, flushes when no more input is
// buffered, and closes after answering when the client closes its sending
// side.
type Reference struct {
	ln      net.Listener
	prefix  []byte // "AT <name> +0.000000000 "
	whatsat []byte // " <location> <time>\n<json>\n\n"

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu
	wg     sync.WaitGroup
}

// refLineMax is the longest line Reference reads; a longer one closes the
// connection, as in a herd.
const refLineMax = 4096

// StartReference starts a Reference server on a free 127.0.0.1 port.
func StartReference(o ReferenceOptions) (*Reference, error) {
	if o.Name == "" {
		o.Name = "Reference"
	}
	if o.PlacesJSON == nil {
		o.PlacesJSON = SamplePlacesJSON(5)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reference server: %w", err)
	}
	r := &Reference{
		ln:     ln,
		prefix: []byte("AT " + o.Name + " +0.000000000 "),
		conns:  map[net.Conn]struct{}{},
	}
	r.whatsat = append([]byte(" "+locations[0]+" 1621464827.959498503\n"), bytes.TrimRight(o.PlacesJSON, "\n")...)
	r.whatsat = append(r.whatsat, "\n\n"...)
	r.wg.Go(r.serve)
	return r, nil
}

// Addr returns the server's address.
func (r *Reference) Addr() string { return r.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (r *Reference) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

func (r *Reference) serve() {
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			nc.Close()
			return
		}
		r.conns[nc] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go func() {
			defer r.wg.Done()
			r.handle(nc)
			r.mu.Lock()
			delete(r.conns, nc)
			r.mu.Unlock()
			nc.Close()
		}()
	}
}

func (r *Reference) handle(nc net.Conn) {
	rd := bufio.NewReaderSize(nc, refLineMax)
	wr := bufio.NewWriterSize(nc, 64<<10)
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if len(line) > 0 {
			r.answer(wr, line)
		}
		if err != nil { // EOF: the client closed its side; answer what came, then close
			wr.Flush()
			return
		}
		if rd.Buffered() == 0 {
			if wr.Flush() != nil {
				return
			}
		}
	}
}

// answer writes the reply to line (which may end in LF or CR LF).
func (r *Reference) answer(w *bufio.Writer, line []byte) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
	cmd, rest := nextField(line)
	switch string(cmd) {
	case "IAMAT":
		w.Write(r.prefix)
		w.Write(trimRightSpace(rest))
		w.WriteByte('\n')
		return
	case "GEOADD":
		w.WriteString(":1\r\n")
		return
	case "WHATSAT":
		if client, _ := nextField(rest); len(client) > 0 {
			w.Write(r.prefix)
			w.Write(client)
			w.Write(r.whatsat)
			return
		}
	}
	w.WriteString("? ")
	w.Write(line)
	w.WriteByte('\n')
}

// nextField returns the first field of b and what follows it.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && protocol.IsSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !protocol.IsSpace(b[j]) {
		j++
	}
	k := j
	for k < len(b) && protocol.IsSpace(b[k]) {
		k++
	}
	return b[i:j], b[k:]
}

// trimRightSpace drops trailing white space (SPEC §2's set) from b.
func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && protocol.IsSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// shape is what a herd's replies look like, for a Reference of their size.
type shape struct {
	name string
	json []byte // nil unless a WHATSAT was probed
}

// probe sends one IAMAT (and, for workloads with WHATSAT, one WHATSAT) to
// the first target over a one-shot connection and checks the replies; for
// the Redis workload, one GEOADD over a kept-alive connection.
func probe(ctx context.Context, o *Options) (shape, error) {
	addr := o.From
	if o.Workload != Propagation {
		addr = o.Targets[0]
	}
	if o.Workload == Redis {
		return shape{}, probeRedis(ctx, o, addr)
	}
	ex := newExchanger(Oneshot, []string{addr}, o.Timeout)
	defer ex.close()
	g := newGenerator(o, 0)
	client := o.RunID + ".probe"
	var req request
	reply, err := ex.exchange(ctx, 0, g.iamat(nil, &req, client, locations[0]), false)
	if err != nil {
		return shape{}, fmt.Errorf("%s: %w (is the herd running there?)", addr, err)
	}
	if err := CheckIAMATReply(reply, req.client, req.loc, req.timeField()); err != nil {
		return shape{}, fmt.Errorf("%s does not answer IAMAT like a herd: %w", addr, err)
	}
	var f [7][]byte
	protocol.Fields(reply, f[:])
	s := shape{name: string(f[1])}
	if !o.Workload.needsWhatsat() {
		return s, nil
	}
	reply, err = ex.exchange(ctx, 0, appendWhatsat(nil, &req, client, o.Radius, strconv.Itoa(o.Bound)), true)
	if err != nil {
		return shape{}, fmt.Errorf("%s: %w", addr, err)
	}
	if _, err := CheckWHATSATReply(reply, client); err != nil {
		return shape{}, fmt.Errorf("%s does not answer WHATSAT like a herd: %w", addr, err)
	}
	_, body, _ := bytes.Cut(reply, []byte{'\n'})
	s.json = bytes.Clone(body[:len(body)-2])
	return s, nil
}

// probeRedis sends one GEOADD to addr and checks the reply.
func probeRedis(ctx context.Context, o *Options, addr string) error {
	ex := newExchanger(Keepalive, []string{addr}, o.Timeout)
	defer ex.close()
	var req request
	reply, err := ex.exchange(ctx, 0, appendGeoadd(nil, &req, o.RunID+".probe", redisLngLat[0]), false)
	if err != nil {
		return fmt.Errorf("%s: %w (is Redis running there?)", addr, err)
	}
	if err := CheckGEOADDReply(reply); err != nil {
		return fmt.Errorf("%s does not answer GEOADD like Redis: %w", addr, err)
	}
	return nil
}
