package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"herd/internal/store"
)

// errDamaged makes `herd store` exit 1 once it has said what is damaged.
var errDamaged = errors.New("the data directory is damaged")

func runStore(_ context.Context, e *env, args []string) error {
	const about = "Inspect or repair one server's data directory (e.g. data/Goloman) while the server is stopped.\n\n" +
		"  check DIR          print what a start would find; exit 1 when it would refuse to start\n" +
		"  repair DIR -yes    cut the history at the first damage, keeping a copy of what is cut\n" +
		"                     (without -yes: only say what it would do)"
	fs := newFlagSet(e, "store", "check|repair DIR", about)
	yes := fs.Bool("yes", false, "repair: really cut (otherwise only say what would be cut)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	// Flags may come before or after the subcommand and DIR.
	var rest []string
	for left := fs.Args(); len(left) > 0; left = fs.Args() {
		rest = append(rest, left[0])
		if err := parseFlags(e, fs, left[1:]); err != nil {
			return err
		}
	}
	if len(rest) != 2 || (rest[0] != "check" && rest[0] != "repair") {
		return usagef("want check DIR or repair DIR, got %q", strings.Join(rest, " "))
	}
	dir := rest[1]
	if rest[0] == "check" {
		if *yes {
			return usagef("-yes is for repair")
		}
		r, err := store.Check(dir)
		if err != nil {
			return err
		}
		printReport(e.stdout, r)
		if r.Damage != nil {
			fmt.Fprintf(e.stdout, "a start refuses this directory; `herd store repair %s -yes` would cut at the damage and drop %d records\n", dir, r.Dropped)
			return errDamaged
		}
		fmt.Fprintln(e.stdout, "clean: a start loads this directory")
		return nil
	}
	if !*yes {
		r, err := store.Check(dir)
		if err != nil {
			return err
		}
		if r.Damage == nil {
			fmt.Fprintf(e.stdout, "%s: nothing to repair\n", dir)
			return nil
		}
		fmt.Fprintf(e.stdout, "first damage: %v\nrepair would cut there and drop %d records after it, keeping a copy of what it cuts as <file>.cut-<time>.\nRun `herd store repair %s -yes` to do it.\n",
			r.Damage, r.Dropped, dir)
		return errDamaged
	}
	r, err := store.Repair(dir)
	if err != nil {
		return err
	}
	if r.Damage == nil {
		fmt.Fprintf(e.stdout, "%s: nothing to repair\n", dir)
		return nil
	}
	fmt.Fprintf(e.stdout, "cut at the first damage: %v\ndropped %d records\n", r.Damage, r.Dropped)
	for _, c := range r.Cut {
		fmt.Fprintf(e.stdout, "kept a copy of what was cut: %s\n", c)
	}
	fmt.Fprintln(e.stdout, "now:")
	printReport(e.stdout, r)
	return nil
}

// printReport says what a start would find in a data directory.
func printReport(w io.Writer, r store.Report) {
	fmt.Fprintf(w, "directory %s\n", r.Dir)
	if r.InUse {
		fmt.Fprintln(w, "  in use by a running server: its newest segment may change while it is read")
	}
	if r.Snapshot {
		fmt.Fprintf(w, "  snapshot: %d bytes, %d entries\n", r.SnapshotBytes, r.SnapshotEntries)
	} else {
		fmt.Fprintln(w, "  snapshot: none")
	}
	fmt.Fprintf(w, "  log segments: %d\n", len(r.Segments))
	for _, sg := range r.Segments {
		fmt.Fprintf(w, "    %s: %d bytes, %d records\n", sg.Name, sg.Bytes, sg.Records)
	}
	if r.Covered > 0 {
		fmt.Fprintf(w, "  %d segments covered by the snapshot (a start deletes them)\n", r.Covered)
	}
	if len(r.Temporary) > 0 {
		fmt.Fprintf(w, "  unfinished files (a start deletes them): %s\n", strings.Join(r.Temporary, ", "))
	}
	if !r.Manifest {
		fmt.Fprintln(w, "  no manifest (a start writes one)")
	}
	fmt.Fprintf(w, "  runs recorded: %d\n", r.Runs)
	fmt.Fprintf(w, "  a start loads %d entries up to change %d, and %d neighbour positions\n", r.Entries, r.Seq, r.Peers)
	if r.Torn != nil {
		fmt.Fprintf(w, "  torn write at the end of the log (a start cuts it): %s at offset %d: %s\n", r.Torn.File, r.Torn.Offset, r.Torn.Reason)
	}
	if r.Damage != nil {
		fmt.Fprintf(w, "  damage: %v\n", r.Damage)
		fmt.Fprintf(w, "  intact records after the damage: %d\n", r.Dropped)
	}
}
