package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"herd/internal/geo"
	"herd/internal/live"
	"herd/internal/location"
)

// Stream settings (Options.Heartbeat, StreamWriteTimeout, StreamBuffer).
const (
	// DefaultHeartbeat is how often an idle stream gets a comment line,
	// which keeps proxies and browsers from closing it.
	DefaultHeartbeat = 15 * time.Second
	// DefaultStreamWriteTimeout is how long one write to a stream may
	// take before the consumer is cut off.
	DefaultStreamWriteTimeout = 10 * time.Second
	// DefaultStreamBuffer is how many events a consumer may fall behind
	// the server's changes before it is cut off.
	DefaultStreamBuffer = 8192
)

// streamBatch is the most events written to a stream at once.
const streamBatch = 512

// streamWriteBytes is about the most bytes of events written at once.
const streamWriteBytes = 32 << 10

// streamFlush is the least time between two writes of events to a stream:
// an event waits at most this long, and only while others came just before.
const streamFlush = 10 * time.Millisecond

// streamFilter is what one stream shows.
type streamFilter struct {
	g       Grant
	clients map[string]bool // nil: every client the grant may read
	fence   *geo.Circle     // nil: no fence
}

// parseStreamFilter reads ?client=ID (repeatable) and
// ?lat=…&lon=…&radius_km=… (a fence).
func parseStreamFilter(q url.Values, g Grant) (streamFilter, error) {
	f := streamFilter{g: g}
	for _, id := range q["client"] {
		if err := checkClientID(id); err != nil {
			return f, err
		}
		if !g.CanRead(id) {
			return f, errorf(http.StatusForbidden, "this token may not read client %q", id)
		}
		if f.clients == nil {
			f.clients = map[string]bool{}
		}
		f.clients[id] = true
	}
	if q.Has("lat") || q.Has("lon") || q.Has("radius_km") {
		c, err := parsePoint(q.Get("lat"), q.Get("lon"))
		if err != nil {
			return f, err
		}
		r, err := parseRadius(q.Get("radius_km"))
		if err != nil {
			return f, err
		}
		f.fence = &geo.Circle{Center: c, RadiusM: r}
	}
	return f, nil
}

// shows reports whether the stream shows events of client.
func (f *streamFilter) shows(client string) bool {
	return (f.clients == nil || f.clients[client]) && f.g.CanRead(client)
}

// stream serves GET /v1/stream: Server-Sent Events of the changes the
// server applies, filtered, from the position in Last-Event-ID when the
// log still holds it.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.o.Live == nil {
		writeError(w, http.StatusServiceUnavailable, "this server has no change log to stream")
		return
	}
	f, err := parseStreamFilter(r.URL.Query(), g)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	lg := a.o.Live
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id") // for clients that cannot set the header
	}
	cursor, pos := lg.Head()
	reset := false
	if lastID != "" {
		reset = true
		if p, err := lg.ParseID(lastID); err == nil {
			if c, ok := lg.After(p); ok {
				cursor, reset = c, false
			}
		}
	}

	rc := http.NewResponseController(w)
	// The listener's read and write timeouts are for ordinary requests:
	// a stream lives on, each write with its own deadline.
	rc.SetReadDeadline(time.Time{})
	s := &sseWriter{w: w, rc: rc, timeout: a.o.StreamWriteTimeout}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	a.metrics.streams.Inc()
	defer a.metrics.streams.Dec()

	buf := []byte("retry: 2000\n")
	switch {
	case reset:
		// The log no longer holds what the consumer missed: say so, and
		// send what holds now.
		buf = append(lg.AppendID(append(buf, "id: "...), pos), "\nevent: reset\ndata: {}\n\n"...)
		if err := s.write(buf); err != nil {
			return
		}
		if err := a.sendState(s, &f); err != nil {
			return
		}
		buf = buf[:0]
	case lastID == "":
		// An id with no event: a consumer that reconnects before its first
		// event resumes from here.
		buf = append(lg.AppendID(append(buf, "id: "...), pos), "\n\n"...)
	}
	if len(buf) > 0 {
		if err := s.write(buf); err != nil {
			return
		}
	}

	heartbeat := time.NewTicker(a.o.Heartbeat)
	defer heartbeat.Stop()
	pause := time.NewTimer(0)
	defer pause.Stop()
	var evs []*live.Event
	var lastWrite time.Time
	keep := make([]byte, 0, streamWriteBytes+1024)
	for {
		wake := lg.Wait()
		var behind uint64
		var ok bool
		evs, cursor, behind, ok = lg.Read(cursor, evs[:0], streamBatch)
		if !ok || behind > uint64(a.o.StreamBuffer) {
			a.cutOff(behind + uint64(len(evs)))
		}
		if len(evs) > 0 {
			// One buffer per stream, kept across writes and never much
			// over streamWriteBytes.
			buf, n := keep[:0], 0
			for k, e := range evs {
				var shown bool
				if buf, shown = a.appendEvent(buf, e, &f); shown {
					n++
				}
				if len(buf) >= streamWriteBytes || k == len(evs)-1 && len(buf) > 0 {
					if err := s.write(buf); err != nil {
						s.failed(a, err, behind+uint64(len(evs)-k))
						return
					}
					a.metrics.sent.Add(float64(n))
					buf, n = buf[:0], 0
					lastWrite = time.Now()
				}
			}
			keep = buf
			continue
		}
		// Caught up. Under a stream of changes, write at most every
		// streamFlush: many events per write instead of one write (and
		// one wake-up) per change on every stream.
		if d := streamFlush - time.Since(lastWrite); d > 0 {
			pause.Reset(d)
			select {
			case <-pause.C:
			case <-r.Context().Done():
				return
			case <-a.stop:
				return
			}
			continue
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			if err := s.write([]byte(": heartbeat\n\n")); err != nil {
				s.failed(a, err, 0)
				return
			}
		case <-r.Context().Done():
			return
		case <-a.stop:
			return
		}
	}
}

// cutOff ends a stream whose consumer fell more than its buffer behind:
// the connection is closed at once, without writing more.
func (a *API) cutOff(missed uint64) {
	a.metrics.cutOff.Inc()
	a.metrics.dropped.Add(float64(missed))
	panic(http.ErrAbortHandler)
}

// sseWriter writes to one stream, each write with its own deadline.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *sseWriter) write(b []byte) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// failed counts a write that failed: a consumer that did not take it
// within the write timeout was cut off.
func (s *sseWriter) failed(a *API, err error, missed uint64) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		a.metrics.cutOff.Inc()
		a.metrics.dropped.Add(float64(missed))
	}
}

// eventJSON is the data of an event on a stream without a fence: the
// location object, or for a deletion the tombstone's.
func eventJSON(e *live.Event) []byte {
	var v any
	switch e.Kind {
	case live.Deleted:
		v = deletedOf(e.Record)
	default:
		loc, _, err := toLocation(e.Record)
		if err != nil {
			return []byte(`{"client":` + strconv.Quote(e.Record.Client) + `}`)
		}
		v = loc
	}
	b, _ := json.Marshal(v)
	return b
}

// appendEvent appends e as the stream f shows it (if it does).
func (a *API) appendEvent(dst []byte, e *live.Event, f *streamFilter) ([]byte, bool) {
	if !f.shows(e.Record.Client) {
		return dst, false
	}
	if f.fence == nil {
		// The same bytes on every stream without a fence: made once.
		return append(dst, e.Frame(a.plainFrame)...), true
	}
	data := e.Data(eventJSON)
	var kind string
	in := e.Kind == live.Location && f.fence.Contains(e.Point)
	was := e.HadPrev && f.fence.Contains(e.Prev)
	dist, reason := -1.0, ""
	switch {
	case in && !was:
		kind = "enter"
	case in && was:
		kind = "location"
	case was:
		kind = "exit"
		switch e.Kind {
		case live.Deleted:
			reason = "deleted"
		case live.Expired:
			reason = "expired"
		}
	default:
		return dst, false
	}
	if e.Kind == live.Location {
		dist = geo.Distance(f.fence.Center, e.Point)
	}
	return appendSSE(dst, a.o.Live, e.Pos, kind, data, dist, reason), true
}

// plainFrame is e as a stream without a fence shows it.
func (a *API) plainFrame(e *live.Event) []byte {
	kind := "location"
	switch e.Kind {
	case live.Deleted:
		kind = "delete"
	case live.Expired:
		kind = "expire"
	}
	return appendSSE(nil, a.o.Live, e.Pos, kind, e.Data(eventJSON), -1, "")
}

// appendSSE appends one event: its id (unless lg is nil), event name and
// data, with distance_m (if not negative) and reason (if not empty)
// added to the data object.
func appendSSE(dst []byte, lg *live.Log, pos live.Pos, kind string, data []byte, dist float64, reason string) []byte {
	if lg != nil {
		dst = append(lg.AppendID(append(dst, "id: "...), pos), '\n')
	}
	dst = append(dst, "event: "...)
	dst = append(dst, kind...)
	dst = append(dst, "\ndata: "...)
	if dist < 0 && reason == "" || len(data) < 2 {
		dst = append(dst, data...)
	} else {
		dst = append(dst, data[:len(data)-1]...)
		if dist >= 0 {
			dst = append(dst, `,"distance_m":`...)
			dst = strconv.AppendFloat(dst, roundMM(dist), 'f', -1, 64)
		}
		if reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = strconv.AppendQuote(dst, reason)
		}
		dst = append(dst, '}')
	}
	return append(dst, "\n\n"...)
}

// sendState writes, after a reset, what the stream would show of the
// current state: a location event for each client shown (an enter event
// for each client inside a fence), without ids.
func (a *API) sendState(s *sseWriter, f *streamFilter) error {
	var buf []byte
	flush := func(force bool) error {
		if len(buf) == 0 || !force && len(buf) < 64<<10 {
			return nil
		}
		err := s.write(buf)
		buf = buf[:0]
		return err
	}
	add := func(rec location.Record, kind string, dist float64) error {
		loc, _, err := toLocation(rec)
		if err != nil {
			return nil
		}
		b, _ := json.Marshal(loc)
		buf = appendSSE(buf, nil, live.Pos{}, kind, b, dist, "")
		return flush(false)
	}
	switch {
	case f.fence != nil:
		if a.o.Index == nil {
			return nil
		}
		if a.o.Sync != nil {
			a.o.Sync()
		}
		for _, h := range a.o.Index.Nearby(f.fence.Center, f.fence.RadiusM, 0, f.shows) {
			if rec, ok := a.o.Backend.Lookup(h.Client); ok {
				if err := add(rec, "enter", h.DistanceM); err != nil {
					return err
				}
			}
		}
	case f.clients != nil:
		for id := range f.clients {
			if rec, ok := a.o.Backend.Lookup(id); ok {
				if err := add(rec, "location", -1); err != nil {
					return err
				}
			}
		}
	default:
		var err error
		a.o.Backend.Range(func(rec location.Record) bool {
			if f.shows(rec.Client) {
				err = add(rec, "location", -1)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	return flush(true)
}
