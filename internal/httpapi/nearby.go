package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"herd/internal/geo"
	"herd/internal/location"
	"herd/internal/protocol"
	"herd/internal/server"
)

// Limits of GET /v1/nearby.
const (
	// DefaultNearbyLimit is the most clients a nearby query returns
	// without ?limit=.
	DefaultNearbyLimit = 100
	// MaxNearbyLimit is the largest ?limit=.
	MaxNearbyLimit = 1000
	// maxRadiusKm is half the Earth's circumference: every point is
	// within it.
	maxRadiusKm = math.Pi * geo.EarthRadiusM / 1000
)

// Nearby is one client of a nearby answer.
type Nearby struct {
	Client    string      `json:"client"`
	Lat       json.Number `json:"lat"`
	Lon       json.Number `json:"lon"`
	DistanceM float64     `json:"distance_m"`
	Time      string      `json:"time"`
	Server    string      `json:"server"`
	At        string      `json:"at"`
}

// NearbyAnswer is the body of a nearby answer.
type NearbyAnswer struct {
	Clients []Nearby `json:"clients"`
}

// getNearby serves GET /v1/nearby?lat=…&lon=…&radius_km=…&limit=…: the
// clients the token may read within the radius, nearest first.
func (a *API) getNearby(w http.ResponseWriter, r *http.Request) {
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	center, err := parsePoint(q.Get("lat"), q.Get("lon"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.answerNearby(w, r, g, center, "")
}

// getClientNearby serves GET /v1/clients/{id}/nearby?radius_km=…&limit=…:
// the clients near {id}, {id} left out.
func (a *API) getClientNearby(w http.ResponseWriter, r *http.Request) {
	id, err := a.readable(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	g, _ := a.authenticate(r)
	rec, ok := a.o.Backend.Lookup(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no location known for client %q", id))
		return
	}
	at, err := protocol.ParseAT([]byte(rec.Line))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.answerNearby(w, r, g, geo.Point{Lat: at.Lat, Lon: at.Lng}, id)
}

// answerNearby runs a nearby query around center, leaving out the client
// except (if not empty), and answers it.
func (a *API) answerNearby(w http.ResponseWriter, r *http.Request, g Grant, center geo.Point, except string) {
	if a.o.Index == nil {
		writeError(w, http.StatusServiceUnavailable, "this server has no spatial index")
		return
	}
	q := r.URL.Query()
	radiusM, err := parseRadius(q.Get("radius_km"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	limit := DefaultNearbyLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxNearbyLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad limit %q: want an integer 1 to %d", s, MaxNearbyLimit))
			return
		}
		limit = n
	}
	start := time.Now()
	if a.o.Sync != nil {
		a.o.Sync()
	}
	hits := a.o.Index.Nearby(center, radiusM, limit, func(client string) bool {
		return client != except && g.CanRead(client)
	})
	out := NearbyAnswer{Clients: make([]Nearby, 0, len(hits))}
	for _, h := range hits {
		rec, ok := a.o.Backend.Lookup(h.Client)
		if !ok {
			continue // deleted or expired since the index was read
		}
		n, err := nearbyOf(rec, h.DistanceM)
		if err != nil {
			continue
		}
		out.Clients = append(out.Clients, n)
	}
	a.metrics.nearby.Observe(time.Since(start).Seconds())
	writeJSON(w, out)
}

// nearbyOf describes a record found at distanceM.
func nearbyOf(rec location.Record, distanceM float64) (Nearby, error) {
	loc, _, err := toLocation(rec)
	if err != nil {
		return Nearby{}, err
	}
	return Nearby{Client: loc.Client, Lat: loc.Lat, Lon: loc.Lon, DistanceM: roundMM(distanceM),
		Time: loc.Time, Server: loc.Server, At: loc.At}, nil
}

// roundMM rounds metres to millimetres.
func roundMM(m float64) float64 { return math.Round(m*1000) / 1000 }

// parsePoint reads ?lat=&lon=.
func parsePoint(lat, lon string) (geo.Point, error) {
	if lat == "" || lon == "" {
		return geo.Point{}, errorf(http.StatusBadRequest, "lat and lon are required: e.g. ?lat=34.0689&lon=-118.4452&radius_km=5")
	}
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(lon, 64)
	if err1 != nil || err2 != nil || !(la >= -90 && la <= 90) || !(lo >= -180 && lo <= 180) {
		return geo.Point{}, errorf(http.StatusBadRequest, "bad location %s,%s: want decimal degrees, latitude in [-90, 90] and longitude in [-180, 180]", lat, lon)
	}
	return geo.Point{Lat: la, Lon: lo}, nil
}

// parseRadius reads ?radius_km= as metres.
func parseRadius(s string) (float64, error) {
	if s == "" {
		return 0, errorf(http.StatusBadRequest, "radius_km is required: e.g. ?radius_km=5")
	}
	km, err := strconv.ParseFloat(s, 64)
	if err != nil || !(km > 0) || km > 20040 {
		return 0, errorf(http.StatusBadRequest, "bad radius_km %q: want a number of km, 0 < radius_km <= 20040", s)
	}
	return min(km, maxRadiusKm) * 1000, nil
}

// deleteClient serves DELETE /v1/clients/{id}: the client is forgotten
// herd-wide (a tombstone), once saved on this server.
func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) {
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := checkClientID(id); err != nil {
		a.fail(w, r, err)
		return
	}
	if !g.CanWrite(id) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("this token may not delete client %q", id))
		return
	}
	who := who(r)
	a.o.Backend.LogClientLine("client input", who, []byte("DELETE "+id))
	rec, err := a.o.Backend.Delete(r.Context(), id)
	switch {
	case errors.Is(err, server.ErrUnknownClient):
		a.o.Backend.LogClientLine("client output", who, []byte("? DELETE "+id))
		writeError(w, http.StatusNotFound, fmt.Sprintf("no location known for client %q", id))
		return
	case errors.Is(err, server.ErrNotDurable):
		a.o.Backend.LogClientLine("client output", who, []byte("? DELETE "+id))
		writeError(w, http.StatusServiceUnavailable, "the deletion could not be saved on this server (its data directory is failing): not acknowledged, try again")
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "gave up waiting for the deletion to be saved")
		return
	case err != nil:
		a.fail(w, r, err)
		return
	}
	a.o.Backend.LogClientLine("client output", who, []byte(rec.Line))
	writeJSON(w, deletedOf(rec))
}

// Deleted describes a tombstone: who deleted the client, and when.
type Deleted struct {
	Client    string `json:"client"`
	Time      string `json:"time"`   // the deleting server's clock, POSIX seconds
	Server    string `json:"server"` // the server that deleted it
	Tombstone string `json:"tombstone"`
	Reason    string `json:"reason,omitempty"` // on a fence's exit: "deleted"
}

func deletedOf(rec location.Record) Deleted {
	d, err := protocol.ParseDEL([]byte(rec.Line))
	if err != nil {
		return Deleted{Client: rec.Client, Tombstone: rec.Line}
	}
	return Deleted{Client: rec.Client, Time: string(d.TimeText), Server: string(d.Server), Tombstone: rec.Line}
}
