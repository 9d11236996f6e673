package herd

import (
	"context"
	"log/slog"
)

// quietLinks keeps a member's progress output to one line per link: it
// drops "peer link up" for a neighbour that runs in this process and
// sorts before the member, since that neighbour reports the same link.
type quietLinks struct {
	slog.Handler
	self  string
	local func(name string) bool // whether a server runs in this process
}

func (q quietLinks) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "peer link up" {
		drop := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "peer" {
				p := a.Value.String()
				drop = p < q.self && q.local(p)
				return false
			}
			return true
		})
		if drop {
			return nil
		}
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietLinks) WithAttrs(as []slog.Attr) slog.Handler {
	return quietLinks{q.Handler.WithAttrs(as), q.self, q.local}
}

func (q quietLinks) WithGroup(g string) slog.Handler {
	return quietLinks{q.Handler.WithGroup(g), q.self, q.local}
}

// runsHere reports whether the server called name runs in this process.
func (h *Herd) runsHere(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.local[name]
}
