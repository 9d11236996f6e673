package status

import (
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
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

// Handler returns the HTTP handler of one server's status listener:
//
//	GET /            the status page (and its files, embedded in the binary)
//	GET /api/state   src() as JSON, with Access-Control-Allow-Origin: *
//	GET /events      server-sent events, one "state" event with src() as JSON
//	                 immediately and then every second, until the request's
//	                 context ends
//	GET /healthz     200 "ok\n" for as long as the listener serves
//	GET /metrics     metrics, or 404 when metrics is nil
//
// src is called once per /api/state request and once per event; it must be
// safe for concurrent use and should be cheap. Non-finite counter values are
// left out of the JSON, and nil slices and maps are sent as empty ones.
func Handler(src func() State, metrics http.Handler) http.Handler {
	h := &handler{src: src}
	page, err := fs.Sub(web, "web")
	if err != nil {
		panic("status: embedded page missing: " + err.Error()) // cannot happen: web is embedded
	}
	files := http.FileServerFS(page)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", pagePolicy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/state", h.state)
	mux.HandleFunc("GET /events", h.events)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	if metrics == nil {
		metrics = http.NotFoundHandler()
	}
	mux.Handle("GET /metrics", metrics)
	return mux
}

// handler serves the JSON and event endpoints.
type handler struct {
	src func() State // immutable
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
	hdr.Set("Access-Control-Allow-Origin", "*")
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
	hdr.Set("Access-Control-Allow-Origin", "*")
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
