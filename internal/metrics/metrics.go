// Package metrics holds one server's Prometheus metrics. Counters on the
// hot path (connections, commands, reply latency) are updated as things
// happen; figures other packages already keep (links, clients known, the
// places cache) are read when Prometheus scrapes, through a Source.
//
// Every method is safe on a nil *Server, which records nothing, so code
// and tests that do not care about metrics pass nil.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herd/internal/location"
	"herd/internal/peer"
	"herd/internal/store"
)

// Command outcomes, the values of the outcome label.
const (
	OutcomeOK            = "ok"             // IAMAT stored, WHATSAT answered from an OK or ZERO_RESULTS lookup
	OutcomeStale         = "stale"          // IAMAT not newer than the stored location: answered with the stored line
	OutcomeUnknownClient = "unknown_client" // WHATSAT for a client the herd does not know
	OutcomePlacesError   = "places_error"   // WHATSAT answered with a non-OK places status
	OutcomeInvalid       = "invalid"        // anything answered with "? "
	OutcomeRefused       = "refused"        // IAMAT refused by a [locations] limit (future time, full table, expired): answered with "? "
)

// Commands, the values of the command label.
const (
	CmdIAMAT   = "IAMAT"
	CmdWHATSAT = "WHATSAT"
	CmdInvalid = "invalid"
)

// Server is the metrics of one herd server.
type Server struct {
	reg *prometheus.Registry

	connsOpen     prometheus.Gauge
	connsTotal    prometheus.Counter
	connsRejected *prometheus.CounterVec
	commands      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	placesLatency prometheus.Histogram
	placesCalls   *prometheus.CounterVec

	// Plain counts for the status page.
	nIAMAT, nWHATSAT, nInvalid, nOpen atomic.Int64

	// Pre-resolved children for the hot path.
	iamatOK, iamatStale, whatsatOK, whatsatUnknown, whatsatPlaces, invalid prometheus.Counter
	latIAMAT, latWHATSAT, latInvalid                                       prometheus.Observer
}

// Source gives the figures read at scrape time.
type Source func() Snapshot

// Snapshot is what a Source reports.
type Snapshot struct {
	Clients   int
	Locations location.Stats // refusals and expiry of the location table
	Links     []peer.LinkState
	Places    *Places // nil when the provider has no cache
	Peer      PeerAuth
	Store     *store.Stats // nil without a data directory
}

// PeerAuth is the figures of peer authentication.
type PeerAuth struct {
	Refused    map[string]int64 // handshakes refused, by reason label
	InProgress int              // handshakes in progress
	CertExpiry time.Time        // when this server's peer certificate expires; zero without TLS
}

// Places is the places cache's figures.
type Places struct {
	Hits, Misses, Shared, UpstreamCalls, UpstreamErrors, UpstreamNotOK, RateLimited, Evictions uint64
	Entries                                                                                    int
}

// New creates the metrics of server name, with Go runtime and process
// metrics, reading scrape-time figures from src (which may be nil).
func New(name string, src Source) *Server {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"server": name}
	f := func(o prometheus.Opts) prometheus.Opts { o.ConstLabels = labels; return o }
	m := &Server{reg: reg}
	m.connsOpen = prometheus.NewGauge(prometheus.GaugeOpts(f(prometheus.Opts{Name: "herd_client_connections_open", Help: "Client connections open now (peer links excluded)."})))
	m.connsTotal = prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{Name: "herd_client_connections_total", Help: "Connections accepted on the client port (peers that share the port included)."})))
	m.connsRejected = prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{Name: "herd_client_connections_rejected_total", Help: "Client connections closed at once, by the limit reached: max_conns or max_conns_per_ip."})), []string{"limit"})
	m.connsRejected.WithLabelValues(LimitConns)
	m.connsRejected.WithLabelValues(LimitPerIP)
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{Name: "herd_commands_total", Help: "Client commands by command and outcome."})), []string{"command", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "herd_reply_duration_seconds", Help: "Time from reading a command to writing its reply.", ConstLabels: labels,
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"command"})
	m.placesLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herd_places_duration_seconds", Help: "Time a WHATSAT waited for the places provider (cache included).", ConstLabels: labels,
		Buckets: []float64{10e-6, 100e-6, 1e-3, 10e-3, 50e-3, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.placesCalls = prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{Name: "herd_places_lookups_total", Help: "WHATSAT lookups by result: ok (OK or ZERO_RESULTS), status (another Google status) or error (no answer)."})), []string{"result"})
	reg.MustRegister(m.connsOpen, m.connsTotal, m.connsRejected, m.commands, m.latency, m.placesLatency, m.placesCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src != nil {
		reg.MustRegister(&collector{src: src, labels: labels})
	}
	m.iamatOK = m.commands.WithLabelValues(CmdIAMAT, OutcomeOK)
	m.iamatStale = m.commands.WithLabelValues(CmdIAMAT, OutcomeStale)
	m.whatsatOK = m.commands.WithLabelValues(CmdWHATSAT, OutcomeOK)
	m.whatsatUnknown = m.commands.WithLabelValues(CmdWHATSAT, OutcomeUnknownClient)
	m.whatsatPlaces = m.commands.WithLabelValues(CmdWHATSAT, OutcomePlacesError)
	m.invalid = m.commands.WithLabelValues(CmdInvalid, OutcomeInvalid)
	m.latIAMAT = m.latency.WithLabelValues(CmdIAMAT)
	m.latWHATSAT = m.latency.WithLabelValues(CmdWHATSAT)
	m.latInvalid = m.latency.WithLabelValues(CmdInvalid)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Server) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the server's registry (tests, extra collectors).
func (m *Server) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// ConnOpened counts an accepted client connection.
func (m *Server) ConnOpened() {
	if m != nil {
		m.connsTotal.Inc()
		m.connsOpen.Inc()
		m.nOpen.Add(1)
	}
}

// ConnClosed counts a client connection that ended.
func (m *Server) ConnClosed() {
	if m != nil {
		m.connsOpen.Dec()
		m.nOpen.Add(-1)
	}
}

// ConnToPeer takes a connection on the client port that became a peer link
// out of the open client connections; ConnFromPeer puts it back when its
// handshake was rejected and it goes on as a client.
func (m *Server) ConnToPeer() { m.ConnClosed() }

// ConnFromPeer undoes ConnToPeer.
func (m *Server) ConnFromPeer() {
	if m != nil {
		m.connsOpen.Inc()
		m.nOpen.Add(1)
	}
}

// Connection limits, the values of the limit label of
// herd_client_connections_rejected_total.
const (
	LimitConns = "max_conns"
	LimitPerIP = "max_conns_per_ip"
)

// ConnRejected counts a connection refused at a limit (LimitConns or
// LimitPerIP).
func (m *Server) ConnRejected(limit string) {
	if m != nil {
		m.connsRejected.WithLabelValues(limit).Inc()
	}
}

// Command counts one command with its outcome (the constants above).
func (m *Server) Command(cmd, outcome string) {
	if m == nil {
		return
	}
	switch cmd {
	case CmdIAMAT:
		m.nIAMAT.Add(1)
	case CmdWHATSAT:
		m.nWHATSAT.Add(1)
	default:
		m.nInvalid.Add(1)
	}
	switch {
	case cmd == CmdIAMAT && outcome == OutcomeOK:
		m.iamatOK.Inc()
	case cmd == CmdIAMAT && outcome == OutcomeStale:
		m.iamatStale.Inc()
	case cmd == CmdWHATSAT && outcome == OutcomeOK:
		m.whatsatOK.Inc()
	case cmd == CmdWHATSAT && outcome == OutcomeUnknownClient:
		m.whatsatUnknown.Inc()
	case cmd == CmdWHATSAT && outcome == OutcomePlacesError:
		m.whatsatPlaces.Inc()
	case outcome == OutcomeInvalid:
		m.invalid.Inc()
	default:
		m.commands.WithLabelValues(cmd, outcome).Inc()
	}
}

// Counts returns plain totals for the status page: commands by kind and
// open connections.
func (m *Server) Counts() map[string]float64 {
	if m == nil {
		return nil
	}
	return map[string]float64{
		"iamat": float64(m.nIAMAT.Load()), "whatsat": float64(m.nWHATSAT.Load()),
		"invalid": float64(m.nInvalid.Load()), "conns_open": float64(m.nOpen.Load()),
	}
}

// Reply records the time from reading a command to writing its reply.
func (m *Server) Reply(cmd string, d time.Duration) {
	if m == nil {
		return
	}
	s := d.Seconds()
	switch cmd {
	case CmdIAMAT:
		m.latIAMAT.Observe(s)
	case CmdWHATSAT:
		m.latWHATSAT.Observe(s)
	default:
		m.latInvalid.Observe(s)
	}
}

// Places records one places lookup: how long it took and its result
// ("ok", "status" or "error").
func (m *Server) Places(d time.Duration, result string) {
	if m == nil {
		return
	}
	m.placesLatency.Observe(d.Seconds())
	m.placesCalls.WithLabelValues(result).Inc()
}

// collector turns a Snapshot into metrics at scrape time.
type collector struct {
	src    Source
	labels prometheus.Labels
}

const (
	descLinkDown   = "herd_peer_link_down_total"
	helpLinkDown   = "Live peer connections that ended, by neighbour and reason (bad_mac: a message altered or injected on the wire)."
	descHSRefused  = "herd_peer_handshake_refused_total"
	helpHSRefused  = "Peer handshakes refused by this server or its neighbours, by reason (credential, stranger, not_loopback, busy, timeout, mode, version, malformed)."
	descHSProgress = "herd_peer_handshakes_in_progress"
	helpHSProgress = "Unauthenticated connections in their peer handshake (at most 64)."
	descCertExpiry = "herd_peer_cert_expiry_timestamp_seconds"
	helpCertExpiry = "When this server's peer TLS certificate expires (Unix time); absent without [peer.tls]."
)

const (
	descRejected = "herd_updates_rejected_total"
	helpRejected = "Location updates (from clients and neighbours) refused by a [locations] limit, by reason: future (max_clock_skew), full (max_clients), expired (ttl)."
	descStoreErr = "herd_store_errors_total"
	helpStoreErr = "Failed writes, fsyncs and truncations of the data directory's log; while it fails, IAMATs that change state are answered with ? and /healthz answers 503."
	descFsyncs   = "herd_store_fsyncs_total"
	helpFsyncs   = "Fsyncs of the data directory's log."
	descFsyncMax = "herd_store_fsync_max_seconds"
	helpFsyncMax = "The longest fsync of the data directory's log since the server started."
	descFsyncLst = "herd_store_fsync_last_seconds"
	helpFsyncLst = "How long the last fsync of the data directory's log took."
	descExpired  = "herd_clients_expired_total"
	helpExpired  = "Locations forgotten because their client time became older than [locations] ttl."
)

var (
	descClients   = "herd_clients_known"
	linkMetrics   = []string{"herd_peer_link_up", "herd_peer_queue_length", "herd_peer_reconnects_total", "herd_flood_dropped_total", "herd_peer_handshake_failures_total", "herd_flood_received_total", "herd_flood_sent_total", "herd_catchup_records_total", "herd_catchup_bytes_total"}
	linkHelp      = []string{"1 while the link to the neighbour is up.", "Updates queued toward the neighbour.", "Times the link to the neighbour came back after it had been up (0 for a link that never failed).", "Updates dropped because the neighbour's queue was full (the link is then resynced).", "Dials whose handshake failed (wrong secret, wrong name…).", "Updates received from the neighbour.", "Updates sent to the neighbour.", "Records sent to catch the neighbour up after (re)connection.", "Bytes sent to catch the neighbour up after (re)connection."}
	placesMetrics = []string{"herd_places_cache_hits_total", "herd_places_cache_misses_total", "herd_places_cache_shared_total", "herd_places_upstream_calls_total", "herd_places_upstream_errors_total", "herd_places_upstream_not_ok_total", "herd_places_rate_limited_total", "herd_places_cache_evictions_total", "herd_places_cache_entries"}
	placesHelp    = []string{"Lookups answered from the cache.", "Lookups not in the cache.", "Lookups that shared another identical lookup's upstream call.", "Calls to the places provider.", "Upstream calls that failed.", "Upstream answers with a status other than OK or ZERO_RESULTS.", "Lookups refused by the upstream rate limit.", "Cache entries evicted for space.", "Answers in the cache."}
)

func (c *collector) desc(name, help string, variable ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, variable, c.labels)
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc(descClients, "Clients whose location this server knows.")
	ch <- c.desc(descRejected, helpRejected, "reason")
	ch <- c.desc(descExpired, helpExpired)
	ch <- c.desc(descStoreErr, helpStoreErr)
	ch <- c.desc(descFsyncs, helpFsyncs)
	ch <- c.desc(descFsyncMax, helpFsyncMax)
	ch <- c.desc(descFsyncLst, helpFsyncLst)
	ch <- c.desc(descLinkDown, helpLinkDown, "peer", "reason")
	ch <- c.desc(descHSRefused, helpHSRefused, "reason")
	ch <- c.desc(descHSProgress, helpHSProgress)
	ch <- c.desc(descCertExpiry, helpCertExpiry)
	for i, n := range linkMetrics {
		ch <- c.desc(n, linkHelp[i], "peer")
	}
	for i, n := range placesMetrics {
		ch <- c.desc(n, placesHelp[i])
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src()
	ch <- prometheus.MustNewConstMetric(c.desc(descClients, "Clients whose location this server knows."), prometheus.GaugeValue, float64(s.Clients))
	for reason, n := range map[string]uint64{"future": s.Locations.RejectedFuture, "full": s.Locations.RejectedFull, "expired": s.Locations.RejectedExpired} {
		ch <- prometheus.MustNewConstMetric(c.desc(descRejected, helpRejected, "reason"), prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.desc(descExpired, helpExpired), prometheus.CounterValue, float64(s.Locations.Expired))
	if s.Store != nil {
		ch <- prometheus.MustNewConstMetric(c.desc(descStoreErr, helpStoreErr), prometheus.CounterValue, float64(s.Store.Errors))
		ch <- prometheus.MustNewConstMetric(c.desc(descFsyncs, helpFsyncs), prometheus.CounterValue, float64(s.Store.Fsyncs))
		ch <- prometheus.MustNewConstMetric(c.desc(descFsyncMax, helpFsyncMax), prometheus.GaugeValue, s.Store.MaxFsync.Seconds())
		ch <- prometheus.MustNewConstMetric(c.desc(descFsyncLst, helpFsyncLst), prometheus.GaugeValue, s.Store.LastFsync.Seconds())
	}
	for _, l := range s.Links {
		up := 0.0
		if l.Up {
			up = 1
		}
		vals := []float64{up, float64(l.Queued), float64(l.Reconnects), float64(l.Dropped), float64(l.Refused), float64(l.Received), float64(l.Sent), float64(l.SyncRecords), float64(l.SyncBytes)}
		for i, n := range linkMetrics {
			t := prometheus.CounterValue
			if i < 2 {
				t = prometheus.GaugeValue
			}
			ch <- prometheus.MustNewConstMetric(c.desc(n, linkHelp[i], "peer"), t, vals[i], l.Peer)
		}
		for reason, n := range l.Down {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(c.desc(descLinkDown, helpLinkDown, "peer", "reason"), prometheus.CounterValue, float64(n), l.Peer, peer.CloseReason(reason).String())
			}
		}
	}
	for reason, n := range s.Peer.Refused {
		ch <- prometheus.MustNewConstMetric(c.desc(descHSRefused, helpHSRefused, "reason"), prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.desc(descHSProgress, helpHSProgress), prometheus.GaugeValue, float64(s.Peer.InProgress))
	if !s.Peer.CertExpiry.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.desc(descCertExpiry, helpCertExpiry), prometheus.GaugeValue, float64(s.Peer.CertExpiry.Unix()))
	}
	if p := s.Places; p != nil {
		vals := []float64{float64(p.Hits), float64(p.Misses), float64(p.Shared), float64(p.UpstreamCalls), float64(p.UpstreamErrors), float64(p.UpstreamNotOK), float64(p.RateLimited), float64(p.Evictions), float64(p.Entries)}
		for i, n := range placesMetrics {
			t := prometheus.CounterValue
			if i == len(placesMetrics)-1 {
				t = prometheus.GaugeValue
			}
			ch <- prometheus.MustNewConstMetric(c.desc(n, placesHelp[i]), t, vals[i])
		}
	}
}
