package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"herd/internal/location"
	"herd/internal/metrics"
	"herd/internal/places"
	"herd/internal/protocol"
)

// The one write path and the one read path of a server, shared by client
// connections and by other front ends (the HTTP API): a report is an IAMAT
// and a places query is a WHATSAT, whatever carried them.

// Errors of Report and Places, besides the table's refusals
// (location.ErrFuture, location.ErrFull, location.ErrExpired).
var (
	// ErrNotDurable says that the store could not save the change: the
	// report is not acknowledged (a TCP client gets "? <line>").
	ErrNotDurable = errors.New("the update could not be saved to this server's data directory")
	// ErrUnknownClient says that the herd knows no location for the client.
	ErrUnknownClient = errUnknownClient
	// errNotIAMAT and errNotWHATSAT are programming errors of a caller.
	errNotIAMAT   = errors.New("not an IAMAT")
	errNotWHATSAT = errors.New("not a WHATSAT")
)

// Reported is the outcome of one report: the record the server now holds
// for the client, and whether the report changed it.
type Reported struct {
	Record  location.Record
	Updated bool
}

// Report handles an IAMAT that did not come over a client connection (cmd
// is the protocol.Parse of an IAMAT line, received at recv): exactly as a
// TCP IAMAT, it is checked against the table's limits, stored if newer,
// flooded to the neighbours and, with a data directory, saved before
// Report returns. The record returned is the one now stored, which is an
// older report's when this one was not newer. Errors: a table refusal
// (location.ErrFuture, ErrFull, ErrExpired), ErrNotDurable, or ctx's error
// while waiting for the store.
func (s *Server) Report(ctx context.Context, cmd *protocol.Command, recv time.Time) (location.Record, bool, error) {
	out, err := s.ReportAll(ctx, []protocol.Command{*cmd}, recv)
	if len(out) == 0 {
		return location.Record{}, false, err
	}
	return out[0].Record, out[0].Updated, err
}

// ReportAll is Report for several IAMATs, stored in order and saved with
// one wait for the store. It stops at the first one the table refuses and
// returns the outcomes of those before it with the error. When the store
// fails, every outcome is returned with ErrNotDurable.
func (s *Server) ReportAll(ctx context.Context, cmds []protocol.Command, recv time.Time) ([]Reported, error) {
	out := make([]Reported, 0, len(cmds))
	for i := range cmds {
		if cmds[i].Kind != protocol.KindIAMAT {
			return out, errNotIAMAT
		}
		_, rec, changed, err := s.storeIAMAT(nil, recv, &cmds[i])
		if err != nil {
			return out, err
		}
		out = append(out, Reported{Record: rec, Updated: changed})
	}
	// Like a TCP IAMAT, wait even when nothing changed: the stored record
	// may be another connection's change that is not on disk yet.
	return out, s.waitDurable(ctx)
}

// waitDurable waits until every change made so far is on disk (at once
// without a store).
func (s *Server) waitDurable(ctx context.Context) error {
	if s.o.Durable == nil {
		return nil
	}
	done := make(chan error, 1)
	s.o.Durable(done)
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotDurable, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeIAMAT stores the location of an IAMAT received at recv if it is
// newer, flooding it, and appends to dst the AT line now stored for the
// client; it also returns that record and whether it changed. When the
// table's limits refuse the location (a time too far ahead, a full table,
// an expired time) it appends nothing and returns why.
func (s *Server) storeIAMAT(dst []byte, recv time.Time, cmd *protocol.Command) ([]byte, location.Record, bool, error) {
	if old, ok := s.o.Table.GetBytes(cmd.Client); ok && old.Time.Compare(cmd.Time) >= 0 {
		s.o.Metrics.Command(metrics.CmdIAMAT, metrics.OutcomeStale)
		return append(dst, old.Line...), old, false, nil
	}
	start := len(dst)
	dst = protocol.AppendAT(dst, s.o.Name, recv, cmd)
	// The line ends with "<client> <location> <time>": the client id sits
	// at a known offset from the end, so the record needs no parsing.
	line := string(dst[start:])
	off := len(line) - len(cmd.TimeText) - 1 - len(cmd.Loc) - 1 - len(cmd.Client)
	rec := location.MakeRecord(line, off, len(cmd.Client), cmd.Time)
	// ApplyLocal runs the table's change hooks, which queue the update to
	// every neighbour: the flood starts before the client sees its reply,
	// so a client that asks another server right after finds it on its way.
	stored, changed, err := s.o.Table.ApplyLocal(rec)
	switch {
	case err != nil:
		s.o.Metrics.Command(metrics.CmdIAMAT, metrics.OutcomeRefused)
		return dst[:start], location.Record{}, false, err
	case !changed:
		s.o.Metrics.Command(metrics.CmdIAMAT, metrics.OutcomeStale)
		return append(dst[:start], stored.Line...), stored, false, nil
	}
	s.o.Metrics.Command(metrics.CmdIAMAT, metrics.OutcomeOK)
	return dst, stored, true, nil
}

// Places answers a WHATSAT that did not come over a client connection (cmd
// is the protocol.Parse of a WHATSAT line; who names the asker in the
// log): the stored AT line of the client and the JSON body a TCP WHATSAT
// gives, byte for byte. Without a location for the client it returns
// ErrUnknownClient. A failing places service is not an error: the body
// then says so, as over TCP.
func (s *Server) Places(ctx context.Context, cmd *protocol.Command, who string) (atLine string, body []byte, err error) {
	if cmd.Kind != protocol.KindWHATSAT {
		return "", nil, errNotWHATSAT
	}
	rec, q, ok := s.whatsatQuery(cmd)
	if !ok {
		s.o.Metrics.Command(metrics.CmdWHATSAT, metrics.OutcomeUnknownClient)
		return "", nil, ErrUnknownClient
	}
	return rec.Line, s.nearby(ctx, who, q), nil
}

// whatsatQuery finds the stored record of a WHATSAT's client and the
// places query it makes.
func (s *Server) whatsatQuery(cmd *protocol.Command) (location.Record, places.Query, bool) {
	rec, ok := s.o.Table.GetBytes(cmd.Client)
	if !ok {
		return location.Record{}, places.Query{}, false
	}
	lat, lng, ok := protocol.ATLocation(rec.Line) // false for a tombstone
	if !ok {
		return location.Record{}, places.Query{}, false
	}
	return rec, places.Query{Lat: lat, Lng: lng, RadiusM: cmd.RadiusKm * 1000, Bound: cmd.Bound}, true
}

// nearby asks the places service (within the places timeout) and returns
// the JSON of a WHATSAT reply: the provider's answer, or a Google-shaped
// error when it failed. It counts the WHATSAT and its lookup.
func (s *Server) nearby(ctx context.Context, who string, q places.Query) []byte {
	ctx, cancel := context.WithTimeout(ctx, s.o.PlacesTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.finder.Load().Nearby(ctx, q)
	result, outcome := "ok", metrics.OutcomeOK
	switch {
	case err != nil:
		result, outcome = "error", metrics.OutcomePlacesError
		s.log.Warn("places lookup failed", "client", who, "err", err.Error())
		resp = places.ErrorResponse(places.StatusUnknownError, "places service failed: "+err.Error())
	case resp.Status != places.StatusOK && resp.Status != places.StatusZeroResults:
		result, outcome = "status", metrics.OutcomePlacesError
		s.log.Warn("places lookup answered "+resp.Status, "client", who, "error_message", resp.ErrorMessage)
	}
	s.o.Metrics.Places(time.Since(start), result)
	s.o.Metrics.Command(metrics.CmdWHATSAT, outcome)
	return resp.Render(q.Bound)
}

// LogClientLine logs a client line in (msg "client input") or out ("client
// output") as client connections do; who names the client (its address).
func (s *Server) LogClientLine(msg, who string, line []byte) {
	if f := s.o.LineLog; f != nil {
		f(msg, who, line)
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		key := "line"
		if msg == "client output" {
			key = "reply"
		}
		s.log.Info(msg, "client", who, key, string(line))
	}
}

// Name is the server's name, as written in the AT lines it makes.
func (s *Server) Name() string { return s.o.Name }

// Lookup returns the stored record of client (expired records are not
// seen).
func (s *Server) Lookup(client string) (location.Record, bool) { return s.o.Table.Get(client) }

// Range calls f for every stored record until f returns false (see
// location.Table.Range).
func (s *Server) Range(f func(location.Record) bool) { s.o.Table.Range(f) }

// MaxLineBytes is the longest client line, its line ending included, that
// the server reads; a report through another front end obeys it too.
func (s *Server) MaxLineBytes() int { return s.clientConfig().MaxLineBytes }
