package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"herd/internal/location"
	"herd/internal/protocol"
)

// MaxFriends is the most friends an OwnTracks answer lists.
const MaxFriends = 1000

// ownTracksIn is the part of an OwnTracks message herd reads; every other
// member (acc, alt, batt, vel, tid, t, created_at, …) is ignored.
type ownTracksIn struct {
	Type string          `json:"_type"`
	Lat  json.RawMessage `json:"lat"`
	Lon  json.RawMessage `json:"lon"`
	Tst  json.RawMessage `json:"tst"`
}

// ownTracksOut is a friend's location as the app reads it.
type ownTracksOut struct {
	Type  string      `json:"_type"`
	Lat   json.Number `json:"lat"`
	Lon   json.Number `json:"lon"`
	Tst   int64       `json:"tst"`
	Tid   string      `json:"tid"`
	Topic string      `json:"topic"`
}

// postOwnTracks serves POST /owntracks, the app's HTTP mode: the client id
// is USER/DEVICE (the HTTP Basic user, or X-Limit-U, and X-Limit-D); a
// location message is stored like an IAMAT and answered with the friends
// the token may read. Zero-length bodies (the app's "friend deleted") and
// messages of other types are answered [].
func (a *API) postOwnTracks(w http.ResponseWriter, r *http.Request) {
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	user, _, ok := r.BasicAuth()
	if !ok || user == "" {
		user = r.Header.Get("X-Limit-U")
	}
	device := r.Header.Get("X-Limit-D")
	if user == "" || device == "" {
		writeError(w, http.StatusBadRequest, "OwnTracks needs the user (HTTP Basic user name or X-Limit-U) and the device (X-Limit-D): set both in the app's Identification settings")
		return
	}
	id := user + "/" + device
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeJSON(w, []ownTracksOut{})
		return
	}
	var in ownTracksIn
	if err := json.Unmarshal(body, &in); err != nil {
		a.fail(w, r, jsonError(err))
		return
	}
	if in.Type != "location" {
		writeJSON(w, []ownTracksOut{})
		return
	}
	rp := report{client: id}
	if rp.lat, err = number("lat", in.Lat); err == nil {
		if rp.lon, err = number("lon", in.Lon); err == nil {
			rp.time, err = number("tst", in.Tst)
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	recv := a.o.Now()
	line, cmd, err := a.iamatFor(g, rp, recv)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.store(r.Context(), r, [][]byte{line}, []protocol.Command{cmd}, recv); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, a.friends(g, id))
}

// friends returns the locations of every client other than self that g
// may read, sorted by client id, at most MaxFriends.
func (a *API) friends(g Grant, self string) []ownTracksOut {
	var recs []location.Record
	if ids, ok := g.ExactReads(); ok {
		for _, id := range ids {
			if rec, ok := a.o.Backend.Lookup(id); ok && id != self {
				recs = append(recs, rec)
			}
		}
	} else {
		a.o.Backend.Range(func(rec location.Record) bool {
			if rec.Client != self && g.CanRead(rec.Client) {
				recs = append(recs, rec)
			}
			return true
		})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Client < recs[j].Client })
	if len(recs) > MaxFriends {
		recs = recs[:MaxFriends]
	}
	out := make([]ownTracksOut, 0, len(recs))
	for _, rec := range recs {
		loc, at, err := toLocation(rec)
		if err != nil {
			continue
		}
		out = append(out, ownTracksOut{Type: "location", Lat: loc.Lat, Lon: loc.Lon, Tst: at.Time.Sec,
			Tid: TrackerID(rec.Client), Topic: "owntracks/" + rec.Client})
	}
	return out
}

// TrackerID is the tid the app shows on a friend's pin: the initials of
// USER and DEVICE for a client id USER/DEVICE ("alice/phone" is "AP"), or
// the first two characters of any other id, in upper case. (The app's own
// default, the last two characters of the topic, would give every
// family member's "phone" the same "ne".)
func TrackerID(client string) string {
	first := func(s string) string {
		_, size := utf8.DecodeRuneInString(s)
		return s[:size]
	}
	var tid string
	if user, dev, ok := strings.Cut(client, "/"); ok && user != "" && dev != "" {
		if i := strings.LastIndexByte(dev, '/'); i >= 0 && i < len(dev)-1 {
			dev = dev[i+1:]
		}
		tid = first(user) + first(dev)
	} else {
		tid = first(client)
		tid += first(client[len(tid):])
	}
	return strings.ToUpper(tid)
}
