package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/herd"
	"herd/internal/places"
	"herd/internal/places/offline"
)

func TestShortcut(t *testing.T) {
	now := time.Unix(1621464827, 959498503)
	tests := map[string]struct {
		args []string
		want string
		bad  bool
	}{
		"iamat default location": {args: []string{"iamat", "kiwi"}, want: "IAMAT kiwi +34.068930-118.445127 1621464827.959498503"},
		"iamat location":         {args: []string{"iamat", "kiwi", "-33.8688+151.2093"}, want: "IAMAT kiwi -33.8688+151.2093 1621464827.959498503"},
		"whatsat":                {args: []string{"whatsat", "kiwi", "10", "5"}, want: "WHATSAT kiwi 10 5"},
		"iamat bad location":     {args: []string{"iamat", "kiwi", "here"}, bad: true},
		"whatsat bad radius":     {args: []string{"whatsat", "kiwi", "99", "5"}, bad: true},
		"whatsat missing bound":  {args: []string{"whatsat", "kiwi", "10"}, bad: true},
		"iamat too many":         {args: []string{"iamat", "a", "+1+1", "x"}, bad: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := shortcut(tt.args, now)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %v as %q", tt.args, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClientAgainstHerd(t *testing.T) {
	cfg := config.Default()
	for i := range cfg.Servers {
		cfg.Servers[i].Addr, cfg.Servers[i].Metrics = "127.0.0.1:0", ""
	}
	cfg.LogDir = ""
	f := offline.New()
	h, err := herd.Start(herd.Options{Config: cfg, NewFinder: func(string) places.Finder { return f }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if _, err := f.Index(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := h.Member("Goloman").ClientAddr

	code, out, errs := runMain(t, "", "client", "-addr", addr, "iamat", "kiwi.cs.ucla.edu")
	if code != exitOK || !strings.HasPrefix(out, "AT Goloman ") || !strings.Contains(out, " kiwi.cs.ucla.edu +34.068930-118.445127 ") {
		t.Fatalf("iamat: %d %q %q", code, out, errs)
	}
	code, out, errs = runMain(t, "", "client", "-addr", addr, "whatsat", "kiwi.cs.ucla.edu", "10", "5")
	if code != exitOK || !strings.Contains(out, "kiwi.cs.ucla.edu is at +34.068930-118.445127 (told Goloman") ||
		!strings.Contains(out, "place") || !strings.Contains(out, " km ") || !strings.Contains(out, "Santa Monica") {
		t.Fatalf("whatsat table: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runMain(t, "", "client", "-addr", addr, "-json", "whatsat", "kiwi.cs.ucla.edu", "10", "1")
	if code != exitOK || !strings.Contains(out, `"status" : "OK"`) || !strings.HasSuffix(out, "}\n\n") {
		t.Fatalf("whatsat -json: %d\n%s", code, out)
	}
	// Lines from standard input, one reply each; a bad line gets "? ".
	code, out, _ = runMain(t, "IAMAT x +1+1 1\nnonsense\n", "client", "-addr", addr)
	if code != exitOK || !strings.HasPrefix(out, "AT Goloman ") || !strings.HasSuffix(out, "? nonsense\n") {
		t.Fatalf("stdin: %d %q", code, out)
	}
	code, _, errs = runMain(t, "", "client", "-addr", addr, "whatsat", "kiwi.cs.ucla.edu", "100", "5")
	if code != exitUsage || !strings.Contains(errs, "whatsat: bad radius") {
		t.Fatalf("bad shortcut: %d %q", code, errs)
	}
}
