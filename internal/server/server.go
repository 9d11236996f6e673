// Package server is one member of a herd: it accepts client connections,
// answers IAMAT and WHATSAT, and hands connections that open with a peer
// handshake to the peer links.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"herd/internal/config"
	"herd/internal/location"
	"herd/internal/metrics"
	"herd/internal/peer"
	"herd/internal/places"
)

// Options configures a Server.
type Options struct {
	Name   string
	Client config.ClientConfig
	// PlacesTimeout bounds one WHATSAT's wait for the places service.
	PlacesTimeout time.Duration
	Table         *location.Table
	Peers         *peer.Manager // may be nil for a server without links
	Finder        places.Finder
	Logger        *slog.Logger
	// AcceptPeersOnClientPort lets a connection to the client listener
	// become a peer link by opening with a peer handshake (when the server
	// has no separate peer listener).
	AcceptPeersOnClientPort bool
	// Now, if set, replaces time.Now (tests).
	Now func() time.Time
	// ShareFDs is how many servers of this process share its file
	// descriptors (herd up runs them all); max_conns is lowered at New so
	// that they all fit. 0 counts as 1.
	ShareFDs int
	// TLS, if set, makes the client listener speak TLS (the course
	// protocol inside is unchanged). Peer links then need their own
	// listener.
	TLS *tls.Config
	// Metrics records what the server does; nil records nothing.
	Metrics *metrics.Server
	// LineLog, if set, logs each client line in and out (msg "client
	// input" or "client output") instead of Logger, on a faster path.
	LineLog func(msg, client string, line []byte)
	// Durable, if set, sends one value on done (which has room for it):
	// nil once every change made so far is on disk, or the error that
	// keeps one from it. An IAMAT's reply waits for it, and is "? <line>"
	// on an error: an update is acknowledged only once it is saved.
	Durable func(done chan<- error)
}

// Server serves clients of one herd member.
type Server struct {
	o   Options
	now func() time.Time
	log *slog.Logger

	ctx    context.Context // cancelled when Shutdown gives up waiting
	cancel context.CancelFunc
	slots  chan struct{} // one token per open client connection
	perIP  ipLimit
	client atomic.Pointer[config.ClientConfig] // limits of new connections (SetClient)
	finder atomic.Pointer[finderRef]           // the places provider (SetFinder)

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[net.Conn]struct{}     // guarded by mu: client connections
	shutdown  bool                      // guarded by mu
	wg        sync.WaitGroup            // connection goroutines
}

// New creates a Server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	fitMaxConns(&o)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		o: o, now: o.Now, log: o.Logger, ctx: ctx, cancel: cancel,
		slots:     make(chan struct{}, o.Client.MaxConns),
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
		perIP:     ipLimit{max: o.Client.MaxConnsPerIP, open: map[netip.Addr]int{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	cl := o.Client
	s.client.Store(&cl)
	s.finder.Store(&finderRef{o.Finder})
	return s
}

// finderRef holds a places provider for an atomic pointer.
type finderRef struct{ places.Finder }

// SetClient changes the client limits of connections made from now on
// (line length, timeouts, pipelining, one_shot); connections already open
// keep theirs. max_conns and max_conns_per_ip stay as they were at New.
func (s *Server) SetClient(c config.ClientConfig) {
	old := s.client.Load()
	c.MaxConns, c.MaxConnsPerIP = old.MaxConns, old.MaxConnsPerIP
	s.client.Store(&c)
}

// SetFinder makes f answer WHATSAT from now on; lookups under way finish
// with the provider they started with.
func (s *Server) SetFinder(f places.Finder) { s.finder.Store(&finderRef{f}) }

// clientConfig is the client limits for a new connection.
func (s *Server) clientConfig() *config.ClientConfig { return s.client.Load() }

// fitMaxConns lowers o.Client.MaxConns to what the process's file
// descriptor limit allows, with a warning naming both values.
func fitMaxConns(o *Options) {
	limit := fdLimit()
	if n := fitConns(o.Client.MaxConns, limit, o.ShareFDs); n < o.Client.MaxConns {
		o.Logger.Warn("client.max_conns lowered to fit the file-descriptor limit",
			"configured", o.Client.MaxConns, "effective", n, "fd_limit", limit, "servers_in_process", max(o.ShareFDs, 1), "reserve_per_server", fdReserve)
		o.Client.MaxConns = n
	}
}

// MaxConns returns the client connections the server holds at most: the
// configured max_conns, or less to fit the file-descriptor limit.
func (s *Server) MaxConns() int { return s.client.Load().MaxConns }

// ErrServerClosed is returned by Serve and ServePeers after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Serve accepts client connections on ln until Shutdown. Each connection is
// served in its own goroutines. Serve always returns a non-nil error;
// after Shutdown it is ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	return s.acceptLoop(ln, s.handleClient)
}

// ServePeers accepts connections from other servers on a dedicated peer
// listener until Shutdown. A connection that fails the peer handshake is
// closed.
func (s *Server) ServePeers(ln net.Listener) error {
	return s.acceptLoop(ln, s.handlePeer)
}

// acceptLoop accepts connections on ln and serves each with handle in a
// goroutine of its own, counted until it ends or hands the connection to
// the peer links (handle then calls handedOff, which also forgets nc).
func (s *Server) acceptLoop(ln net.Listener, handle func(nc net.Conn, handedOff func())) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Temporary failures (EMFILE and the like): back off, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "err", err.Error(), "retry_in", backoff.String())
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			var once sync.Once
			done := func() { once.Do(s.wg.Done) }
			defer done()
			handle(nc, func() {
				s.removeConn(nc)
				done()
			})
		}()
	}
}

// track registers a listener whose accept loop is starting. The loop
// counts in wg, so that connections are added to wg only while its count
// is above zero (WaitGroup forbids Add at zero concurrent with Wait).
func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// addConn registers a client connection; false when shutting down.
func (s *Server) addConn(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) removeConn(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// Shutdown stops the listeners, then stops reading from every client
// connection: commands already read are still answered and the connection
// is closed after its last reply. Shutdown waits for that until ctx is
// done, then closes whatever is left. Peer links are not closed here: they
// belong to the peer.Manager.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for ln := range s.listeners {
		ln.Close()
	}
	for nc := range s.conns {
		nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 5 * time.Second

// handshakeTLS runs the server side of a client's TLS handshake on nc.
func (s *Server) handshakeTLS(nc net.Conn) (*tls.Conn, error) {
	tc := tls.Server(nc, s.o.TLS)
	ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
