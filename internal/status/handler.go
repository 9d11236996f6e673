package status

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"strings"
	"time"
)

// web holds the status page: index.html, style.css and app.js.
//
//go:embed web
var web embed.FS

const (
	// eventInterval is how often /events pushes the State.
	eventInterval = time.Second
	// eventWriteTimeout bounds each write of /events, so a client that
	// stops reading is dropped instead of holding the stream open.
	eventWriteTimeout = 10 * time.Second
)

// pagePolicy is the Content-Security-Policy of the page: everything from its
// own server, except that it may fetch any other server's /api/state.
const pagePolicy = "default-src 'self'; connect-src *; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configures a status listener's Handler.
type Options struct {
	// State describes the server; it is called once per /api/state request
	// and once per event, must be safe for concurrent use and should be
	// cheap.
	State func() State
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Health, if set, says whether the server serves: a non-nil error makes
	// /healthz answer 503 with it.
	Health func() error
	// Token, if set, is needed for the page and its data (/, /api/state,
	// /events): as the HTTP Basic password (any user name) or as
	// "Authorization: Bearer <token>".
	Token string
	// Closed refuses the page and its data with 403 and a message saying
	// how to open them: for a listener reachable from other machines
	// without a Token.
	Closed bool
	// AllowOrigin, if set, says whether a browser page of another origin
	// (e.g. "http://127.0.0.1:13001": the herd's other status pages) may
	// read /api/state. Nothing else may: there is no wildcard.
	AllowOrigin func(origin string) bool
}

// closedMessage answers the page and its data on a Closed listener.
const closedMessage = "the status page shows client locations, and this listener is reachable from other machines: " +
	"set [metrics] token_file in the config to open it with a token, or listen on a loopback address\n"

// Handler returns the HTTP handler of one server's status listener:
//
//	GET /            the status page (and its files, embedded in the binary)
//	GET /api/state   State() as JSON; readable from AllowOrigin's origins too
//	GET /events      server-sent events, one "state" event with State() as
//	                 JSON immediately and then every second, until the
//	                 request's context ends
//	GET /healthz     200 "ok\n" while Health() is nil, else 503 and the error
//	GET /metrics     metrics, or 404 when Metrics is nil
//
// The first three need o.Token when it is set, and answer 403 when o.Closed.
// Non-finite counter values are left out of the JSON, and nil slices and
// maps are sent as empty ones.
func Handler(o Options) http.Handler {
	h := &handler{src: o.State, allowOrigin: o.AllowOrigin}
	guard := newGuard(o)
	page, err := fs.Sub(web, "web")
	if err != nil {
		panic("status: embedded page missing: " + err.Error()) // cannot happen: web is embedded
	}
	files := http.FileServerFS(page)

	mux := http.NewServeMux()
	mux.Handle("GET /", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", pagePolicy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /api/state", guard(http.HandlerFunc(h.state)))
	mux.HandleFunc("OPTIONS /api/state", h.preflight)
	mux.Handle("GET /events", guard(http.HandlerFunc(h.events)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if o.Health != nil {
			if err := o.Health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	metrics := o.Metrics
	if metrics == nil {
		metrics = http.NotFoundHandler()
	}
	mux.Handle("GET /metrics", metrics)
	return mux
}

// handler serves the JSON and event endpoints.
type handler struct {
	src         func() State             // immutable
	allowOrigin func(origin string) bool // immutable; nil: none
}

// newGuard returns the middleware that keeps the page and its data from
// strangers: 403 on a closed listener, 401 without the token.
func newGuard(o Options) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(o.Token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			switch {
			case o.Closed:
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(closedMessage))
				return
			case o.Token != "" && !hasToken(r, want):
				w.Header().Set("WWW-Authenticate", `Basic realm="herd status", charset="UTF-8"`)
				http.Error(w, "a token is needed: give it as the password (any user name) or as Authorization: Bearer <token>", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// hasToken reports whether r carries the token whose SHA-256 is want, as a
// Basic password or a Bearer token; compared in constant time.
func hasToken(r *http.Request, want [32]byte) bool {
	got, ok := "", false
	if _, pw, basic := r.BasicAuth(); basic {
		got, ok = pw, true
	} else if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		got, ok = strings.TrimSpace(a[7:]), true
	}
	sum := sha256.Sum256([]byte(got))
	return ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// state serves /api/state.
func (h *handler) state(w http.ResponseWriter, r *http.Request) {
	b, err := h.stateJSON()
	if err != nil {
		http.Error(w, "cannot encode state", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	if o := r.Header.Get("Origin"); o != "" && h.allowOrigin != nil && h.allowOrigin(o) {
		hdr.Set("Access-Control-Allow-Origin", o)
		hdr.Set("Access-Control-Allow-Credentials", "true")
		hdr.Add("Vary", "Origin")
	}
	_, _ = w.Write(b)
}

// events serves /events: a server-sent event stream of the State, sent at
// once and then every eventInterval, ending with the request's context or
// the first failed write.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	tick := time.NewTicker(eventInterval)
	defer tick.Stop()
	prefix := []byte("retry: 2000\nevent: state\ndata: ")
	for {
		b, err := h.stateJSON()
		if err != nil {
			return
		}
		// A server's WriteTimeout would end the stream; a per-write deadline
		// drops only clients that stop reading. Writers without deadlines
		// (ErrNotSupported) are fine.
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(prefix); err != nil {
			return
		}
		if _, err := w.Write(append(b, '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		prefix = []byte("event: state\ndata: ")
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// preflight answers a browser's CORS preflight for /api/state: allowed for
// the herd's own status pages, so a page holding the token may send it as
// Authorization: Bearer to the other servers.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request) {
	o := r.Header.Get("Origin")
	if o == "" || h.allowOrigin == nil || !h.allowOrigin(o) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", o)
	hdr.Set("Access-Control-Allow-Credentials", "true")
	hdr.Set("Access-Control-Allow-Methods", "GET")
	hdr.Set("Access-Control-Allow-Headers", "Authorization")
	hdr.Set("Access-Control-Max-Age", "600")
	hdr.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
}

// stateJSON returns src() as JSON, cleaned by wireState.
func (h *handler) stateJSON() ([]byte, error) {
	return json.Marshal(wireState(h.src()))
}

// wireState returns s ready for JSON: empty slices and maps instead of nil
// (so the page need not check for null) and no NaN or infinite counters
// (which JSON cannot carry). s itself is not modified.
func wireState(s State) State {
	counters := make(map[string]float64, len(s.Counters))
	for k, v := range s.Counters {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			counters[k] = v
		}
	}
	s.Counters = counters
	if s.Links == nil {
		s.Links = []Link{}
	}
	if s.Recent == nil {
		s.Recent = []Update{}
	}
	herd := make([]Node, len(s.Herd))
	for i, n := range s.Herd {
		if n.Neighbors == nil {
			n.Neighbors = []string{}
		}
		herd[i] = n
	}
	s.Herd = herd
	return s
}
