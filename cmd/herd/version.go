package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", "", "Print herd's version and the Go version it was built with.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && v == "dev" {
				v = "dev+" + s.Value[:12]
			}
		}
		fmt.Fprintf(e.stdout, "herd %s (%s, peer protocol %s)\n", v, bi.GoVersion, peerVersion())
		return nil
	}
	fmt.Fprintf(e.stdout, "herd %s (peer protocol %s)\n", v, peerVersion())
	return nil
}
