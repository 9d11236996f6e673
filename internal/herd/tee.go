package herd

import (
	"context"
	"log/slog"
)

// teeLogger sends records to both loggers: the server's log file gets
// everything, the progress output the records at Info and above.
func teeLogger(file, progress *slog.Logger) *slog.Logger {
	return slog.New(tee{file.Handler(), progress.Handler()})
}

type tee struct{ a, b slog.Handler }

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	if t.a.Enabled(ctx, r.Level) {
		t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		t.b.Handle(ctx, r)
	}
	return nil
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t tee) WithGroup(g string) slog.Handler {
	return tee{t.a.WithGroup(g), t.b.WithGroup(g)}
}
