package server

import (
	"context"

	"herd/internal/location"
)

// Delete forgets client herd-wide: it stores a tombstone timed at this
// server's clock (location.Table.Delete), which is flooded to the
// neighbours like an update and, with a data directory, saved before
// Delete returns. Every reader then stops showing the client (WHATSAT
// answers "? …"), and no update older than the tombstone can bring it back;
// a newer IAMAT does. Errors: ErrUnknownClient when the server holds no
// location for client (so nobody can make tombstones of ids the herd never
// knew), ErrNotDurable, or ctx's error while waiting for the store.
func (s *Server) Delete(ctx context.Context, client string) (location.Record, error) {
	r, ok := s.o.Table.Delete(s.o.Name, client)
	if !ok {
		return location.Record{}, ErrUnknownClient
	}
	return r, s.waitDurable(ctx)
}
