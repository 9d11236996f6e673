package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", "", "Print herd's module version, the commit it was built from, the Go version\nand the peer protocol version.")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(e.stdout, "herd (no build information) peer protocol %s\n", peerVersion())
		return nil
	}
	fmt.Fprintln(e.stdout, versionLine(bi))
	return nil
}

// versionLine says which herd bi describes: the module version (a tag,
// a pseudo-version, or "(devel)" for a build from a work tree), the commit
// and whether the tree had changes, the Go version and the peer protocol.
func versionLine(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified, when string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+changes"
			}
		case "vcs.time":
			when = " " + s.Value
		}
	}
	commit := "commit unknown"
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		commit = "commit " + rev + modified + when
	}
	return fmt.Sprintf("herd %s, %s, %s, peer protocol %s", v, commit, bi.GoVersion, peerVersion())
}
