// Package herd assembles herd members from a config: for each server its
// location table, peer links, client server and log file. `herd up` runs
// every member in one process, `herd serve` one; tests run herds in-process
// on 127.0.0.1 port 0.
package herd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"herd/internal/config"
	"herd/internal/geo"
	"herd/internal/httpapi"
	"herd/internal/live"
	"herd/internal/location"
	"herd/internal/logging"
	"herd/internal/metrics"
	"herd/internal/peer"
	"herd/internal/places"
	"herd/internal/places/cache"
	"herd/internal/server"
	"herd/internal/status"
	"herd/internal/store"
)

// Options says what to run.
type Options struct {
	Config *config.Config
	// Names are the servers to run in this process; empty: all of them.
	Names []string
	// NewFinder returns the places provider of one server.
	NewFinder func(server string) places.Finder
	// Secrets authenticate peer links when the config has no [peer.tls]:
	// the first proves each member, any is accepted. Empty: protected mode
	// (peers from loopback only), or insecure when the config says so.
	Secrets [][]byte
	// MetricsToken opens the status pages; empty: none.
	MetricsToken string
	// Level, if set, is the least severe level the members log; it may be
	// changed while they run (the caller's progress output can share it).
	// Nil: the config's log_level.
	Level *slog.LevelVar
	// Listen, if set, replaces net.Listen for every listener (tests).
	Listen func(network, addr string) (net.Listener, error)
	// StoreOptions, if set, adjusts the store options of each member with
	// a data directory before it opens (tests inject disk faults).
	StoreOptions func(server string, o *store.Options)
	// HTTPOptions, if set, adjusts the HTTP API options of each member
	// with an http listener (tests shorten stream timeouts).
	HTTPOptions func(server string, o *httpapi.Options)
	// Progress receives human-readable events (links up/down, listening);
	// nil: discarded.
	Progress *slog.Logger
	// Discard logs nothing to files even when the config has a log_dir.
	NoLogFiles bool
	// withoutLive runs members with no spatial index and no live log
	// (benchmarks measure what they cost an IAMAT).
	withoutLive bool
}

// Herd is a set of running members.
type Herd struct {
	o   Options
	cfg *config.Config

	mu           sync.Mutex
	members      map[string]*Member // guarded by mu
	addrs        map[string]string  // guarded by mu: name -> resolved peer address
	metricsAddrs map[string]string  // guarded by mu: name -> resolved metrics address
	tokens       *httpapi.Tokens    // [http] tokens_file; nil without one
	local        map[string]bool    // guarded by mu: the servers this process runs
	warnedFDs    sync.Once          // the max_conns warning goes to the progress output once
	reload       sync.Mutex         // serialises Reload
}

// Member is one running server.
type Member struct {
	Name        string
	ClientAddr  string // resolved listener address
	PeerAddr    string // resolved peer listener address (== ClientAddr without peer_addr)
	MetricsAddr string // resolved metrics listener address; empty without one
	HTTPAddr    string // resolved http listener address; empty without one
	Table       *location.Table
	Peers       *peer.Manager
	Server      *server.Server
	Metrics     *metrics.Server
	Store       *store.Store // nil without data_dir
	Index       *geo.Index   // where every client is, kept in step with Table
	Live        *live.Log    // the latest changes, for streams and the status page
	fol         *follower    // applies the table's changes to Index and Live
	started     time.Time
	certExpiry  time.Time // of the peer certificate; zero without TLS
	h           *Herd
	log         *logging.File
	web         *http.Server  // the metrics listener, nil without one
	api         *http.Server  // the http listener, nil without one
	done        chan struct{} // closed when the accept loops have returned
}

// Start listens on the addresses of every member (so clients can connect
// at once), then starts their links. On error nothing is left running.
func Start(o Options) (*Herd, error) {
	h := &Herd{o: o, cfg: o.Config, members: map[string]*Member{}, addrs: map[string]string{}, metricsAddrs: map[string]string{}, local: map[string]bool{}}
	if h.o.Progress == nil {
		h.o.Progress = logging.Discard()
	}
	if h.o.Level == nil {
		h.o.Level = new(slog.LevelVar)
		h.o.Level.Set(o.Config.Level())
	}
	names := o.Names
	if len(names) == 0 {
		names = o.Config.Names()
	}
	for _, n := range names {
		h.local[n] = true
	}
	var err error
	if h.tokens, err = loadTokens(o.Config); err != nil {
		return nil, err
	}
	for _, s := range o.Config.Servers {
		h.addrs[s.Name] = s.PeerAddrOf()
		h.metricsAddrs[s.Name] = s.Metrics
	}
	var ls []bound
	closeAll := func() {
		for _, b := range ls {
			b.close()
		}
	}
	for _, name := range names {
		s, ok := o.Config.Server(name)
		if !ok {
			closeAll()
			return nil, fmt.Errorf("no server named %q in the config (servers are %v)", name, o.Config.Names())
		}
		b, err := h.bind(s)
		if err != nil {
			closeAll()
			return nil, err
		}
		ls = append(ls, b)
	}
	for _, b := range ls {
		m, err := h.startMember(b)
		if err != nil {
			closeAll()
			h.Close(context.Background())
			return nil, err
		}
		h.members[m.Name] = m
	}
	return h, nil
}

// bound is a server's listeners, bound before it starts.
type bound struct {
	s                  config.Server
	cln, pln, mln, hln net.Listener
}

func (b bound) close() { closeListeners(b.cln, b.pln, b.mln, b.hln) }

// bind listens on every address of s, so clients can connect at once, and
// records where neighbours in this process dial it. On error nothing is
// left listening.
func (h *Herd) bind(s config.Server) (bound, error) {
	b := bound{s: s}
	var err error
	listen := func(ln *net.Listener, addr, what string) {
		if err == nil && addr != "" {
			if *ln, err = h.listen(addr); err != nil {
				err = fmt.Errorf("server %s: %s%w", s.Name, what, err)
			}
		}
	}
	listen(&b.cln, s.Addr, "")
	if s.SeparatePeerListener() {
		listen(&b.pln, s.PeerAddr, "peer_addr: ")
	}
	listen(&b.mln, s.Metrics, "metrics: ")
	listen(&b.hln, s.HTTP, "http: ")
	if err != nil {
		b.close()
		return bound{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.Advertise == "" { // in this process, neighbours dial the port actually bound
		h.addrs[s.Name] = b.cln.Addr().String()
		if b.pln != nil {
			h.addrs[s.Name] = b.pln.Addr().String()
		}
	}
	return b, nil
}

// closeListeners closes the listeners that are not nil.
func closeListeners(lns ...net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			ln.Close()
		}
	}
}

func (h *Herd) listen(addr string) (net.Listener, error) {
	l := net.Listen
	if h.o.Listen != nil {
		l = h.o.Listen
	}
	ln, err := l("tcp", addr)
	if err != nil {
		// net's error repeats the address ("listen tcp ADDR: bind: …"):
		// keep only its cause.
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

func (h *Herd) startMember(b bound) (*Member, error) {
	s, cln, pln, mln, hln := b.s, b.cln, b.pln, b.mln, b.hln
	m := &Member{Name: s.Name, ClientAddr: cln.Addr().String(), done: make(chan struct{}),
		Index: geo.New(), started: time.Now(), h: h}
	m.PeerAddr = m.ClientAddr
	if pln != nil {
		m.PeerAddr = pln.Addr().String()
	}
	logger := logging.Discard()
	if h.cfg.LogDir != "" && !h.o.NoLogFiles {
		f, err := logging.OpenFile(h.cfg.LogDir, s.Name, logging.Rotation{MaxMB: h.cfg.LogMaxMB, Keep: h.cfg.LogKeep, Level: h.o.Level})
		if err != nil {
			return nil, fmt.Errorf("server %s: log file: %w", s.Name, err)
		}
		m.log, logger = f, f.Logger
	}
	m.Table = newTable(h.cfg.Locations, logger)
	progress := slog.New(quietLinks{h.o.Progress.Handler(), s.Name, h.runsHere}).With("server", s.Name)
	auth, certExpiry, err := h.peerAuth(s.Name)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", s.Name, err)
	}
	m.certExpiry = certExpiry
	warnAuth(logger, progress, auth, certExpiry)
	clientTLS, err := listenerTLS("[client.tls]", h.cfg.Client.TLS, s.Name)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", s.Name, err)
	}
	var httpTLS *tls.Config
	if hln != nil {
		if httpTLS, err = listenerTLS("[http.tls]", h.cfg.HTTP.TLS, s.Name); err != nil {
			return nil, fmt.Errorf("server %s: %w", s.Name, err)
		}
	}
	dur, err := m.openStore(h.cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", s.Name, err)
	}
	if dur.runs != nil {
		progress.Info("recovered state", "dir", filepath.Join(h.cfg.DataDir, s.Name), "clients", m.Table.Len(), "seq", m.Table.Seq())
	}
	neighbors := h.neighbors(s.Name)
	po := peer.Options{
		Name: s.Name, Neighbors: neighbors, Config: h.cfg.Peer, Auth: auth,
		Table: m.Table, Logger: slog.New(slog.NewMultiHandler(logger.Handler(), progress.Handler())),
	}
	if dur.runs != nil {
		po.Epoch, po.DeltaFrom, po.Positions = dur.runs.Current(), dur.runs.DeltaFrom, dur.positions
		po.OnPosition = func(p string, pos peer.Pos) { m.Store.MarkPeer(p, store.PeerPos{Epoch: pos.Epoch, Seq: pos.Seq}) }
	}
	m.Peers = peer.New(po)
	m.indexTable()
	m.Live = live.NewLog(liveHistory, m.Peers.Epoch(), m.Table.Seq())
	m.startFollower()
	m.Table.OnChange(m.onChange)
	var finder places.Finder
	if h.o.NewFinder != nil {
		finder = h.o.NewFinder(s.Name)
	}
	if finder == nil {
		finder = unavailable{}
	}
	m.Metrics = metrics.New(s.Name, func() metrics.Snapshot { return m.snapshot(finder) })
	m.registerLiveMetrics()
	so := server.Options{
		Name: s.Name, Client: h.cfg.Client, PlacesTimeout: h.cfg.Places.Timeout.D + time.Second,
		Table: m.Table, Peers: m.Peers, Finder: finder, Logger: logger, Metrics: m.Metrics,
		AcceptPeersOnClientPort: pln == nil, TLS: clientTLS, ShareFDs: h.inProcess(),
	}
	if m.log != nil {
		so.LineLog = m.log.ClientLine
	}
	if m.Store != nil {
		so.Durable = m.Store.Notify
	}
	m.Server = server.New(so)
	if n := m.Server.MaxConns(); n < h.cfg.Client.MaxConns {
		h.warnedFDs.Do(func() {
			h.o.Progress.Warn("client.max_conns lowered to fit the file-descriptor limit (raise it with ulimit -n or LimitNOFILE=)", "configured", h.cfg.Client.MaxConns, "effective_per_server", n)
		})
	}
	if mln != nil {
		m.MetricsAddr = mln.Addr().String()
		h.mu.Lock()
		h.metricsAddrs[s.Name] = m.MetricsAddr
		h.mu.Unlock()
		m.web = &http.Server{Handler: m.webHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go m.web.Serve(mln)
	}
	if hln != nil {
		m.startHTTP(hln, httpTLS, logger)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Server.Serve(cln)
	}()
	if pln != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Server.ServePeers(pln)
		}()
	}
	go func() {
		wg.Wait()
		close(m.done)
	}()
	if every := m.Table.ExpireEvery(); every > 0 {
		go m.expireLoop(every)
	}
	m.Peers.Start()
	logger.Info("listening", "addr", m.ClientAddr, "peer_addr", m.PeerAddr, "metrics", m.MetricsAddr, "http", m.HTTPAddr, "neighbors", names(neighbors))
	where := []any{"addr", m.ClientAddr, "peer_addr", m.PeerAddr}
	if m.MetricsAddr != "" {
		where = append(where, "status", "http://"+m.MetricsAddr+"/")
	}
	if m.HTTPAddr != "" {
		where = append(where, "http", m.HTTPAddr)
	}
	progress.Info("listening", where...)
	return m, nil
}

// onChange is the table's one change hook: every change the table applies
// (from a client, HTTP or a neighbour; a location or a deletion) goes, in
// this order, to the store (so a reply that waits for the disk covers it),
// to the neighbours' queues (the flood starts before the client's reply),
// and to the follower that keeps the spatial index and the live log
// (nearby queries, streams and the status page) in step, in this order.
func (m *Member) onChange(r location.Record, from string) {
	if m.Store != nil {
		m.Store.Append(r.Seq, r.Line, nil)
	}
	m.Peers.Enqueue(r, from)
	m.follow(r, from)
}

func names(ns []peer.Neighbor) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// Member returns the running member called name.
func (h *Herd) Member(name string) *Member {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.members[name]
}

// Members returns the running members sorted by name.
func (h *Herd) Members() []*Member {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Member, 0, len(h.members))
	for _, m := range h.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stop stops one member, as a crash would for its neighbours: its links
// and connections are closed and its state is gone.
func (h *Herd) Stop(ctx context.Context, name string) error {
	h.mu.Lock()
	m := h.members[name]
	delete(h.members, name)
	h.mu.Unlock()
	if m == nil {
		return fmt.Errorf("server %s is not running", name)
	}
	return m.stop(ctx)
}

// Restart starts a stopped member again on the addresses it had.
func (h *Herd) Restart(name string, clientAddr, peerAddr string) error {
	s, ok := h.cfg.Server(name)
	if !ok {
		return fmt.Errorf("no server named %q", name)
	}
	// The addresses it had: port 0 in the config was resolved.
	s.Addr = clientAddr
	s.PeerAddr = ""
	if peerAddr != clientAddr {
		s.PeerAddr = peerAddr
	}
	b, err := h.bind(s)
	if err != nil {
		return err
	}
	m, err := h.startMember(b)
	if err != nil {
		b.close()
		return err
	}
	h.mu.Lock()
	h.members[name] = m
	h.mu.Unlock()
	return nil
}

func (m *Member) stop(ctx context.Context) error {
	if m.web != nil {
		m.web.Close()
	}
	if m.api != nil {
		// Requests in flight finish (their reports reach the store) before
		// the store closes.
		if err := m.api.Shutdown(ctx); err != nil {
			m.api.Close()
		}
	}
	m.Peers.Close()
	err := m.Server.Shutdown(ctx)
	<-m.done
	m.fol.close()
	if m.Store != nil {
		if serr := m.Store.Close(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if m.log != nil {
		m.log.Logger.Info("stopped")
		m.log.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // connections were closed hard; nothing more to do
	}
	return err
}

// Close stops every member, letting client connections finish what they
// have read until ctx is done.
func (h *Herd) Close(ctx context.Context) error {
	h.mu.Lock()
	ms := h.members
	h.members = map[string]*Member{}
	h.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 0, len(ms))
	var emu sync.Mutex
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.stop(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("server %s: %w", m.Name, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// inProcess is how many servers this process runs, sharing its file
// descriptors.
func (h *Herd) inProcess() int {
	if n := len(h.o.Names); n > 0 {
		return n
	}
	return len(h.cfg.Servers)
}

// newTable makes a member's location table with the [locations] limits.
func newTable(lc config.LocationsConfig, logger *slog.Logger) *location.Table {
	return location.NewTable(location.WithLogger(logger), location.WithLimits(tableLimits(lc)))
}

// tableLimits is [locations] as the table's limits.
func tableLimits(lc config.LocationsConfig) location.Limits {
	return location.Limits{MaxClockSkew: lc.MaxClockSkew.D, MaxClients: lc.MaxClients, TTL: lc.TTL.D, TombstoneTTL: lc.TombstoneTTL.D}
}

// expireLoop forgets expired locations until the member stops.
func (m *Member) expireLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.Table.ExpireFunc(m.forget)
		case <-m.done:
			return
		}
	}
}

// snapshot gathers the figures metrics reads at scrape time.
func (m *Member) snapshot(f places.Finder) metrics.Snapshot {
	s := metrics.Snapshot{Clients: m.Table.Len() - m.Table.Tombstones(), Locations: m.Table.Stats()}
	s.Links = m.Peers.Links()
	s.Peer = metrics.PeerAuth{Refused: m.Peers.Refusals(), InProgress: m.Peers.HandshakesInProgress(), CertExpiry: m.certExpiry}
	if m.Store != nil {
		st := m.Store.Stats()
		s.Store = &st
	}
	if c, ok := f.(*cache.Cache); ok {
		st := c.Stats()
		s.Places = &metrics.Places{Hits: st.Hits, Misses: st.Misses, Shared: st.Shared, UpstreamCalls: st.UpstreamCalls,
			UpstreamErrors: st.UpstreamErrors, UpstreamNotOK: st.UpstreamNotOK, RateLimited: st.RateLimited, Evictions: st.Evictions, Entries: st.Entries}
	}
	return s
}

// webHandler serves the status page, its API, /metrics and /healthz on
// the metrics listener. The page and its data show locations: they need
// the token when there is one, and are closed without one on a listener
// other machines can reach. Only the herd's other status pages may read
// the state from a browser.
func (m *Member) webHandler() http.Handler {
	o := status.Options{State: m.state, Metrics: m.Metrics.Handler(), Token: m.h.o.MetricsToken}
	o.Closed = o.Token == "" && !config.IsLoopback(m.MetricsAddr)
	o.AllowOrigin = m.h.isStatusOrigin
	if m.Store != nil {
		o.Health = m.Store.Health
	}
	return status.Handler(o)
}

// isStatusOrigin reports whether origin is the status page of a member.
func (h *Herd) isStatusOrigin(origin string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, addr := range h.metricsAddrs {
		if addr != "" && origin == "http://"+addr {
			return true
		}
	}
	return false
}

// state describes the member for the status page.
func (m *Member) state() status.State {
	st := status.State{
		Server: m.Name, Addr: m.ClientAddr, PeerAddr: m.PeerAddr, Started: m.started,
		Clients: m.Table.Len() - m.Table.Tombstones(), Counters: m.Metrics.Counts(), Recent: m.recent(),
	}
	var in, out int64
	for _, l := range m.Peers.Links() {
		st.Links = append(st.Links, status.LinkOf(l))
		in, out = in+l.Received, out+l.Sent
	}
	if st.Counters != nil {
		st.Counters["flood_in"], st.Counters["flood_out"] = float64(in), float64(out)
	}
	sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Peer < st.Links[j].Peer })
	m.h.mu.Lock()
	for _, s := range m.h.cfg.Servers {
		st.Herd = append(st.Herd, status.Node{Name: s.Name, Addr: s.Addr, Metrics: m.h.metricsAddrs[s.Name], Neighbors: m.h.cfg.Links(s.Name)})
	}
	m.h.mu.Unlock()
	return st
}

// unavailable is the finder of a herd started without one.
type unavailable struct{}

func (unavailable) Nearby(context.Context, places.Query) (*places.Response, error) {
	return places.ErrorResponse("REQUEST_DENIED", "no places provider is configured"), nil
}

// durability is what a member recovered from its data directory.
type durability struct {
	runs      store.Runs          // nil without data_dir
	positions map[string]peer.Pos // how far we had each neighbour's changes
}

// openStore opens the member's data directory, if the config has one,
// loads what it holds into the table, and makes the table log every change.
func (m *Member) openStore(cfg *config.Config, logger *slog.Logger) (durability, error) {
	if cfg.DataDir == "" {
		return durability{}, nil
	}
	dir := filepath.Join(cfg.DataDir, m.Name)
	mode := store.SyncAlways
	if cfg.DataSync == "fast" {
		mode = store.SyncFast
	}
	o := store.Options{Dir: dir, Sync: mode, Logger: logger}
	if f := m.h.o.StoreOptions; f != nil {
		f(m.Name, &o)
	}
	o.Compact = func() {
		if err := m.Store.Snapshot(m.entries); err != nil {
			logger.Error("snapshot failed", "err", err.Error())
		}
	}
	st, state, err := store.Open(o)
	if err != nil {
		return durability{}, err
	}
	recs := make([]location.Record, 0, len(state.Entries))
	for _, e := range state.Entries {
		r, err := location.NewRecord([]byte(e.Line))
		if err != nil {
			logger.Warn("skipping a bad record in the data directory", "seq", e.Seq, "err", err.Error())
			continue
		}
		r.Seq = e.Seq
		recs = append(recs, r)
	}
	m.Table.Restore(recs, state.Seq)
	m.Store = st
	d := durability{runs: state.Runs, positions: map[string]peer.Pos{}}
	for name, p := range state.Peers {
		d.positions[name] = peer.Pos{Epoch: p.Epoch, Seq: p.Seq}
	}
	logger.Info("recovered state", "dir", dir, "clients", m.Table.Len(), "seq", m.Table.Seq(), "sync", mode.String())
	return d, nil
}

// entries yields the table's records for a snapshot.
func (m *Member) entries(yield func(store.Entry) bool) {
	m.Table.RangeAll(func(r location.Record) bool { return yield(store.Entry{Seq: r.Seq, Line: r.Line}) })
}
