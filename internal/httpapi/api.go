// Package httpapi is a herd member's HTTP/JSON side: the /v1 API for
// programs, OwnTracks and OsmAnd/Traccar ingestion for phones, and the
// tokens that decide who may report and read whose location.
//
// It holds no state of its own. Every report goes through the member's one
// write path (Backend.ReportAll, the code a TCP IAMAT takes: same
// validation, same AT line, same flood, same wait for the store), built
// as the text of an IAMAT line and parsed by the client protocol's parser;
// every read sees the same table as WHATSAT.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herd/internal/geo"
	"herd/internal/live"
	"herd/internal/location"
	"herd/internal/protocol"
	"herd/internal/server"
)

// Backend is what the API needs of a herd member; *server.Server is one.
type Backend interface {
	// Name is the member's name, as its AT lines write it.
	Name() string
	// ReportAll stores IAMATs as a client connection would (see
	// server.Server.ReportAll).
	ReportAll(ctx context.Context, cmds []protocol.Command, recv time.Time) ([]server.Reported, error)
	// Places answers a WHATSAT: the AT line and the JSON body.
	Places(ctx context.Context, cmd *protocol.Command, who string) (string, []byte, error)
	// Lookup returns a client's stored record.
	Lookup(client string) (location.Record, bool)
	// Delete forgets a client herd-wide (see server.Server.Delete).
	Delete(ctx context.Context, client string) (location.Record, error)
	// Range visits every stored record.
	Range(f func(location.Record) bool)
	// MaxLineBytes is the longest client line (line ending included).
	MaxLineBytes() int
	// LogClientLine logs a client line in or out.
	LogClientLine(msg, who string, line []byte)
}

var _ Backend = (*server.Server)(nil)

// DefaultMaxBodyBytes is the default request body limit ([http]
// max_body_bytes).
const DefaultMaxBodyBytes = 1 << 20

// Options configures the API of one member.
type Options struct {
	Backend Backend
	// Tokens decides who may do what; nil allows everything (the listener
	// is then loopback only, which the config enforces).
	Tokens *Tokens
	// MaxBodyBytes bounds a request body; 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now, if set, replaces time.Now as the receive time of reports.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, if set, gets the API's metrics; ServerName labels them.
	Registerer prometheus.Registerer
	ServerName string
	// Index answers nearby queries; nil: they are answered 503.
	Index *geo.Index
	// Sync, if set, waits until Index holds every change made so far; a
	// nearby query calls it first.
	Sync func()
	// Live is the member's log of changes, which streams follow; nil:
	// streams are answered 503.
	Live *live.Log
	// Stream settings; zero values take the defaults (DefaultHeartbeat,
	// DefaultStreamWriteTimeout, DefaultStreamBuffer).
	Heartbeat          time.Duration
	StreamWriteTimeout time.Duration
	StreamBuffer       int
}

// API serves the HTTP endpoints of one member.
type API struct {
	o       Options
	mux     *http.ServeMux
	routes  []string // the mux patterns, in registration order
	metrics *httpMetrics
	stop    chan struct{} // closed by StopStreams
	stopped sync.Once
}

// StopStreams ends every open stream (and streams opened later): for
// http.Server.RegisterOnShutdown, since a stream never finishes by itself.
func (a *API) StopStreams() { a.stopped.Do(func() { close(a.stop) }) }

// New returns the API; its Handler serves every route.
func New(o Options) *API {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if o.StreamBuffer <= 0 {
		o.StreamBuffer = DefaultStreamBuffer
	}
	a := &API{o: o, mux: http.NewServeMux(), metrics: newHTTPMetrics(o.ServerName), stop: make(chan struct{})}
	if o.Registerer != nil {
		a.metrics.register(o.Registerer)
	}
	a.handle("POST /v1/locations", a.postLocations)
	a.handle("GET /v1/clients/{id}", a.getClient)
	a.handle("DELETE /v1/clients/{id}", a.deleteClient)
	a.handle("GET /v1/clients/{id}/places", a.getPlaces)
	a.handle("GET /v1/clients/{id}/nearby", a.getClientNearby)
	a.handle("GET /v1/nearby", a.getNearby)
	a.handle("GET /v1/stream", a.stream)
	a.handle("POST /owntracks", a.postOwnTracks)
	a.handle("GET /osmand", a.osmand)
	a.handle("POST /osmand", a.osmand)
	return a
}

// Routes returns the patterns the API serves ("METHOD /path/{wildcard}").
func (a *API) Routes() []string { return append([]string(nil), a.routes...) }

// handle registers one route, counted and timed under its pattern.
func (a *API) handle(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
	a.routes = append(a.routes, pattern)
	a.metrics.init(pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		r.Body = http.MaxBytesReader(sw, r.Body, a.o.MaxBodyBytes)
		h(sw, r)
		a.metrics.observe(pattern, sw.code(), time.Since(start))
	})
}

// ServeHTTP serves a request; a path or method no route takes gets a JSON
// 404 or 405.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	// The mux's own answer says 404 or 405 (and sets Allow); keep its
	// status and headers, answer in JSON.
	probe := &statusWriter{ResponseWriter: discardBody{w}}
	h.ServeHTTP(probe, r)
	code := probe.code()
	if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		h.ServeHTTP(w, r) // a redirect to the clean path
		a.metrics.observe("unmatched", code, time.Since(start))
		return
	}
	msg := "no such endpoint: see docs/HTTP.md"
	if strings.HasPrefix(r.URL.Path, "/v1/clients/") {
		msg += ` (a "/" in a client id is written %2F: /v1/clients/alice%2Fphone)`
	}
	if code == http.StatusMethodNotAllowed {
		msg = "method " + r.Method + " not allowed here (allowed: " + w.Header().Get("Allow") + ")"
	}
	writeError(w, code, msg)
	a.metrics.observe("unmatched", code, time.Since(start))
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (streams
// flush and extend write deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// discardBody passes headers through but writes no header or body: it
// lets a handler's status be read before the real answer is written.
type discardBody struct{ w http.ResponseWriter }

func (d discardBody) Header() http.Header         { return d.w.Header() }
func (d discardBody) Write(b []byte) (int, error) { return len(b), nil }
func (d discardBody) WriteHeader(int)             {}

// httpError is an answer other than success: a status and a message for
// the {"error": …} body.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers {"error": msg} with code.
func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="herd", charset="UTF-8"`)
	}
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}

// fail answers err: an *httpError as it says, anything else as a 500
// (logged, not shown).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.code, he.msg)
		return
	}
	a.o.Logger.Error("http request failed", "client", who(r), "path", r.URL.Path, "err", err.Error())
	writeError(w, http.StatusInternalServerError, "internal error")
}

// writeJSON answers v as JSON with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// who names the requester in logs, like a TCP client's address.
func who(r *http.Request) string { return r.RemoteAddr + " (http)" }

// readBody reads the whole body within the limit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes ([http] max_body_bytes)", mbe.Limit)
		}
		return nil, errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return b, nil
}

// authenticate returns the grant of the request's credentials: the
// password of HTTP Basic, or an "Authorization: Bearer" token. Without a
// tokens file everyone gets AllowAll.
func (a *API) authenticate(r *http.Request) (Grant, error) {
	if a.o.Tokens == nil {
		return AllowAll, nil
	}
	tok, ok := credential(r)
	if !ok {
		return Grant{}, errorf(http.StatusUnauthorized, "credentials needed: a token as the HTTP Basic password or as \"Authorization: Bearer TOKEN\"")
	}
	g, ok := a.o.Tokens.Check(tok)
	if !ok {
		return Grant{}, errorf(http.StatusUnauthorized, "unknown token")
	}
	return g, nil
}

// credential finds the token of a request.
func credential(r *http.Request) (string, bool) {
	if _, pw, ok := r.BasicAuth(); ok {
		return pw, pw != ""
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	return "", false
}

// report is one location to store, as the text fields of an IAMAT.
type report struct {
	client, lat, lon, time string
}

// iamatFor is iamat for a report that grant g must be allowed to write:
// a token that may not write the client gets a 403.
func (a *API) iamatFor(g Grant, rp report, recv time.Time) ([]byte, protocol.Command, error) {
	line, cmd, err := a.iamat(rp, recv)
	if err == nil && !g.CanWrite(rp.client) {
		return nil, protocol.Command{}, errorf(http.StatusForbidden, "this token may not report client %q", rp.client)
	}
	return line, cmd, err
}

// iamat builds the IAMAT line of rp and parses it with the client
// protocol's parser, so that an HTTP report is validated exactly as a TCP
// one; recv is the time used when rp has none.
func (a *API) iamat(rp report, recv time.Time) ([]byte, protocol.Command, error) {
	if err := checkClientID(rp.client); err != nil {
		return nil, protocol.Command{}, err
	}
	t := rp.time
	if t == "" {
		t = formatTime(recv)
	}
	line := make([]byte, 0, 6+len(rp.client)+2+len(rp.lat)+len(rp.lon)+1+len(t))
	line = append(line, "IAMAT "...)
	line = append(line, rp.client...)
	line = append(line, ' ')
	line = appendCoord(line, rp.lat)
	line = appendCoord(line, rp.lon)
	line = append(line, ' ')
	line = append(line, t...)
	if max := a.o.Backend.MaxLineBytes(); len(line)+1 > max {
		return nil, protocol.Command{}, errorf(http.StatusBadRequest, "report too long: its IAMAT line would be %d bytes, over client.max_line_bytes (%d)", len(line)+1, max)
	}
	cmd, err := protocol.Parse(line)
	switch {
	case err == nil:
		return line, cmd, nil
	case errors.Is(err, protocol.ErrLocation):
		return nil, cmd, errorf(http.StatusBadRequest, "bad location %s,%s: want decimal degrees, latitude in [-90, 90] and longitude in [-180, 180]", rp.lat, rp.lon)
	case errors.Is(err, protocol.ErrClientID):
		return nil, cmd, errorf(http.StatusBadRequest, "bad client id %q: want 1–256 bytes of UTF-8 without white space or control characters", rp.client)
	case errors.Is(err, protocol.ErrFields):
		return nil, cmd, errorf(http.StatusBadRequest, "bad report: client id, coordinates and time may not contain white space")
	default:
		return nil, cmd, errorf(http.StatusBadRequest, "bad time %q: want POSIX seconds with up to 9 fractional digits", t)
	}
}

// checkClientID checks an id given over HTTP: one field of the client
// protocol (no white space).
func checkClientID(id string) error {
	if id == "" {
		return errorf(http.StatusBadRequest, "missing client id")
	}
	if strings.ContainsAny(id, " \t\n\v\f\r") || !protocol.ValidClientID([]byte(id)) {
		return errorf(http.StatusBadRequest, "bad client id %q: want 1–256 bytes of UTF-8 without white space or control characters", id)
	}
	return nil
}

// appendCoord appends a decimal number as one ISO 6709 coordinate with its
// sign: "34.068930" as "+34.068930", "-118.445127" as is. A number in
// another form (an exponent, a "+") is appended unchanged, and the parser
// refuses it.
func appendCoord(dst []byte, num string) []byte {
	if num == "" || num[0] == '-' || num[0] == '+' {
		return append(dst, num...)
	}
	return append(append(dst, '+'), num...)
}

// formatTime writes t as POSIX seconds and nine fractional digits.
func formatTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// store reports lines through the backend's write path, logging each line
// in and its answer, and maps the backend's errors to statuses.
func (a *API) store(ctx context.Context, r *http.Request, lines [][]byte, cmds []protocol.Command, recv time.Time) ([]server.Reported, error) {
	w := who(r)
	for _, l := range lines {
		a.o.Backend.LogClientLine("client input", w, l)
	}
	out, err := a.o.Backend.ReportAll(ctx, cmds, recv)
	for i, l := range lines {
		if i < len(out) && !errors.Is(err, server.ErrNotDurable) {
			a.o.Backend.LogClientLine("client output", w, []byte(out[i].Record.Line))
		} else {
			a.o.Backend.LogClientLine("client output", w, append([]byte("? "), l...))
		}
	}
	if err == nil {
		return out, nil
	}
	where := ""
	if len(cmds) > 1 {
		where = fmt.Sprintf("item %d: ", len(out))
		if len(out) > 0 && !errors.Is(err, server.ErrNotDurable) {
			where = fmt.Sprintf("item %d: (items 0 to %d were stored) ", len(out), len(out)-1)
		}
	}
	switch {
	case errors.Is(err, location.ErrFuture):
		return nil, errorf(http.StatusBadRequest, "%stime %s is later than this server's clock plus [locations] max_clock_skew", where, cmds[len(out)].TimeText)
	case errors.Is(err, location.ErrExpired):
		return nil, errorf(http.StatusBadRequest, "%stime %s is older than this server's clock minus [locations] ttl", where, cmds[len(out)].TimeText)
	case errors.Is(err, location.ErrDeleted):
		return nil, errorf(http.StatusConflict, "%sclient %s was deleted at or after time %s: only a later report brings it back", where, cmds[len(out)].Client, cmds[len(out)].TimeText)
	case errors.Is(err, location.ErrFull):
		return nil, errorf(http.StatusTooManyRequests, "%sthis server holds [locations] max_clients locations: no room for a new client", where)
	case errors.Is(err, server.ErrNotDurable):
		return nil, errorf(http.StatusServiceUnavailable, "the update could not be saved on this server (its data directory is failing): not acknowledged, try again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, errorf(http.StatusServiceUnavailable, "gave up waiting for the update to be saved")
	}
	return nil, err
}

// Location is the JSON form of a stored location.
type Location struct {
	Client  string      `json:"client"`
	Lat     json.Number `json:"lat"`
	Lon     json.Number `json:"lon"`
	Time    string      `json:"time"`   // the client's time, as in the AT line
	Server  string      `json:"server"` // the server that received the report
	At      string      `json:"at"`     // the stored AT line
	Updated *bool       `json:"updated,omitempty"`
}

// toLocation describes a stored record.
func toLocation(rec location.Record) (Location, protocol.AT, error) {
	at, err := protocol.ParseAT([]byte(rec.Line))
	if err != nil {
		return Location{}, at, err
	}
	return Location{
		Client: rec.Client,
		Lat:    json.Number(strconv.FormatFloat(at.Lat, 'f', -1, 64)),
		Lon:    json.Number(strconv.FormatFloat(at.Lng, 'f', -1, 64)),
		Time:   string(at.TimeText),
		Server: string(at.Server),
		At:     rec.Line,
	}, at, nil
}
