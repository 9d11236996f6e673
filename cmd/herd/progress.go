package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// progressHandler prints records for people: "15:04:05 Goloman: msg k=v".
type progressHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
}

// newProgressLogger prints records at level and above (info when level is
// nil) to w.
func newProgressLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	return slog.New(&progressHandler{mu: &sync.Mutex{}, w: w, level: level})
}

func (h *progressHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *progressHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05 "))
	var server string
	rest := make([]slog.Attr, 0, len(h.attrs)+r.NumAttrs())
	add := func(a slog.Attr) bool {
		if a.Key == "server" {
			server = a.Value.String()
		} else {
			rest = append(rest, a)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if server != "" {
		b.WriteString(server)
		b.WriteString(": ")
	}
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String())
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	for _, a := range rest {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *progressHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &progressHandler{mu: h.mu, w: h.w, level: h.level, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *progressHandler) WithGroup(string) slog.Handler { return h }
