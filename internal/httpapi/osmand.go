package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"herd/internal/protocol"
)

// osmand serves GET and POST /osmand, the protocol of OsmAnd's online
// tracking and of Traccar Client: id (or deviceid), lat and lon (or
// location=LAT,LON) and timestamp as query or form parameters; other
// parameters (speed, bearing, altitude, accuracy, batt, …) are ignored.
// Clients that cannot send an Authorization header may pass the token as
// the token parameter.
func (a *API) osmand(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes ([http] max_body_bytes)", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "bad query or form: "+err.Error())
		return
	}
	f := r.Form
	if tok := f.Get("token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	g, err := a.authenticate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rp := report{client: f.Get("id"), lat: f.Get("lat"), lon: f.Get("lon")}
	if rp.client == "" {
		rp.client = f.Get("deviceid")
	}
	if loc := f.Get("location"); loc != "" && rp.lat == "" && rp.lon == "" {
		rp.lat, rp.lon, _ = strings.Cut(loc, ",")
	}
	switch {
	case rp.client == "":
		writeError(w, http.StatusBadRequest, "missing id (the device identifier)")
		return
	case rp.lat == "" || rp.lon == "":
		writeError(w, http.StatusBadRequest, "missing lat or lon")
		return
	}
	if ts := f.Get("timestamp"); ts != "" {
		if rp.time, err = osmandTime(ts); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	recv := a.o.Now()
	line, cmd, err := a.iamatFor(g, rp, recv)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.store(r.Context(), r, [][]byte{line}, []protocol.Command{cmd}, recv)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	loc, err := reported(out[0])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, loc)
}

// osmandTime turns an OsmAnd timestamp into the text of an IAMAT time:
// POSIX seconds (with a fraction or not), milliseconds (a whole number of
// 12 digits or more), or RFC 3339.
func osmandTime(ts string) (string, error) {
	bad := errorf(http.StatusBadRequest, "bad timestamp %q: want POSIX seconds, milliseconds or RFC 3339", ts)
	if ts[0] >= '0' && ts[0] <= '9' && !strings.ContainsAny(ts, "-:T") {
		if whole, _, dotted := strings.Cut(ts, "."); !dotted && len(whole) >= 12 {
			ms := strings.TrimLeft(whole, "0")
			if len(ms) < 4 {
				ms = strings.Repeat("0", 4-len(ms)) + ms
			}
			return ms[:len(ms)-3] + "." + ms[len(ms)-3:], nil
		}
		return ts, nil // seconds: the IAMAT parser checks the rest
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Unix() < 0 {
		return "", bad
	}
	if t.Nanosecond() == 0 {
		return fmt.Sprint(t.Unix()), nil
	}
	return formatTime(t), nil
}
