package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"herd/internal/protocol"
	"herd/internal/server"
)

// locationIn is one report of POST /v1/locations. Numbers are kept as
// their JSON text, which becomes the IAMAT's text.
type locationIn struct {
	Client *string          `json:"client"`
	Lat    json.RawMessage  `json:"lat"`
	Lon    json.RawMessage  `json:"lon"`
	Time   *json.RawMessage `json:"time"`
}

// decodeStrict decodes one JSON value into v, refusing unknown members
// and anything after the value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "bad JSON: more than one value in the body")
	}
	return nil
}

// jsonError turns a decoding error into a 400 that says what is wrong.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "bad JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return errorf(http.StatusBadRequest, "bad JSON: %q must be %s, not %s", te.Field, te.Type, te.Value)
		}
		return errorf(http.StatusBadRequest, "bad JSON: want %s, not %s", te.Type, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "bad JSON: the body ends too early")
	}
	return errorf(http.StatusBadRequest, "bad JSON: %v", err)
}

// number returns the text of a JSON number member, or an error naming it.
func number(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errorf(http.StatusBadRequest, "missing %q", name)
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return "", errorf(http.StatusBadRequest, "%q must be a number, not %s", name, raw)
	}
	return string(raw), nil
}

// parse turns one JSON object of POST /v1/locations into a report.
func (l *locationIn) parse() (report, error) {
	if l.Client == nil {
		return report{}, errorf(http.StatusBadRequest, "missing \"client\"")
	}
	rp := report{client: *l.Client}
	var err error
	if rp.lat, err = number("lat", l.Lat); err != nil {
		return report{}, err
	}
	if rp.lon, err = number("lon", l.Lon); err != nil {
		return report{}, err
	}
	if l.Time != nil && string(*l.Time) != "null" {
		t := *l.Time
		if t[0] == '"' {
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return report{}, errorf(http.StatusBadRequest, "bad \"time\": %v", err)
			}
			rp.time = s
			if s == "" {
				return report{}, errorf(http.StatusBadRequest, "bad \"time\": empty; leave it out to use the receive time")
			}
		} else {
			rp.time = string(t)
		}
	}
	return rp, nil
}

// postLocations serves POST /v1/locations: one object, or an array of
// them (a batch, answered by an array). A batch is checked whole before
// anything is stored.
func (a *API) postLocations(w http.ResponseWriter, r *http.Request) {
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	var items []json.RawMessage
	batch := len(trimmed) > 0 && trimmed[0] == '['
	if batch {
		if err := decodeStrict(body, &items); err != nil {
			a.fail(w, r, err)
			return
		}
	} else {
		items = []json.RawMessage{body}
	}
	recv := a.o.Now()
	lines := make([][]byte, 0, len(items))
	cmds := make([]protocol.Command, 0, len(items))
	for i, it := range items {
		line, cmd, err := a.parseItem(g, it, recv)
		if err != nil {
			if batch {
				var he *httpError
				if errors.As(err, &he) {
					err = &httpError{code: he.code, msg: fmt.Sprintf("item %d: %s", i, he.msg)}
				}
			}
			a.fail(w, r, err)
			return
		}
		lines, cmds = append(lines, line), append(cmds, cmd)
	}
	out, err := a.store(r.Context(), r, lines, cmds, recv)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	locs := make([]Location, len(out))
	for i, rep := range out {
		if locs[i], err = reported(rep); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if batch {
		writeJSON(w, locs)
		return
	}
	writeJSON(w, locs[0])
}

// parseItem checks one report and the grant's right to write it.
func (a *API) parseItem(g Grant, it json.RawMessage, recv time.Time) ([]byte, protocol.Command, error) {
	var in locationIn
	if err := decodeStrict(it, &in); err != nil {
		return nil, protocol.Command{}, err
	}
	rp, err := in.parse()
	if err != nil {
		return nil, protocol.Command{}, err
	}
	return a.iamatFor(g, rp, recv)
}

// reported is the answer object of one report.
func reported(rep server.Reported) (Location, error) {
	loc, _, err := toLocation(rep.Record)
	if err != nil {
		return Location{}, err
	}
	updated := rep.Updated
	loc.Updated = &updated
	return loc, nil
}

// readable returns the id of the request's {id} after checking that the
// grant may read it.
func (a *API) readable(r *http.Request) (string, error) {
	g, err := a.authenticate(r)
	if err != nil {
		return "", err
	}
	id := r.PathValue("id")
	if err := checkClientID(id); err != nil {
		return "", err
	}
	if !g.CanRead(id) {
		return "", errorf(http.StatusForbidden, "this token may not read client %q", id)
	}
	return id, nil
}

// getClient serves GET /v1/clients/{id}: the stored location.
func (a *API) getClient(w http.ResponseWriter, r *http.Request) {
	id, err := a.readable(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rec, ok := a.o.Backend.Lookup(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no location known for client %q", id))
		return
	}
	loc, _, err := toLocation(rec)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, loc)
}

// getPlaces serves GET /v1/clients/{id}/places?radius_km=R&bound=B: the
// body of a TCP WHATSAT, byte for byte, with its AT line in Herd-At.
func (a *API) getPlaces(w http.ResponseWriter, r *http.Request) {
	id, err := a.readable(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	radius, bound := q.Get("radius_km"), q.Get("bound")
	if radius == "" || bound == "" {
		writeError(w, http.StatusBadRequest, "radius_km and bound are required: e.g. ?radius_km=10&bound=5")
		return
	}
	cmd, err := protocol.Parse([]byte("WHATSAT " + id + " " + radius + " " + bound))
	switch {
	case errors.Is(err, protocol.ErrRadius):
		writeError(w, http.StatusBadRequest, "bad radius_km "+strconv.Quote(radius)+": want a decimal number of km, 0 < radius_km <= 50")
		return
	case errors.Is(err, protocol.ErrBound):
		writeError(w, http.StatusBadRequest, "bad bound "+strconv.Quote(bound)+": want an integer 1 to 20")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad radius_km or bound: "+err.Error())
		return
	}
	at, body, err := a.o.Backend.Places(r.Context(), &cmd, who(r))
	if errors.Is(err, server.ErrUnknownClient) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no location known for client %q", id))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Herd-At", at)
	w.Write(body)
}
