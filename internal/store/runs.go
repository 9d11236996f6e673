package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// A Run is one Open of a store directory. Change numbers continue across
// runs, but a crash can lose the last changes of a run after they were
// sent to neighbours; the next run then reuses their numbers for other
// changes. So each run has its own epoch, which the server announces, and
// a neighbour's position in an earlier run is trusted only up to where the
// next run started (see docs/PROTOCOL.md, "Catch-up").
type Run struct {
	Epoch uint64 // random, non-zero
	Start uint64 // the first change number of the run
}

// Runs is a store's history of runs, oldest first; the last is current.
type Runs []Run

const (
	runsName = "runs"
	runsTmp  = "runs.tmp"
)

// maxRuns bounds the history; a neighbour whose position is older than
// that many restarts gets a full copy.
const maxRuns = 64

// Current returns the epoch of the current run.
func (rs Runs) Current() uint64 { return rs[len(rs)-1].Epoch }

// DeltaFrom says from which change number a neighbour whose position in
// this server's changes is (epoch, seq) must be sent changes; false if the
// epoch is unknown (the neighbour needs a full copy).
func (rs Runs) DeltaFrom(epoch, seq uint64) (uint64, bool) {
	for i, r := range rs {
		if r.Epoch != epoch {
			continue
		}
		if i == len(rs)-1 {
			return seq, true
		}
		// Changes of run i past the next run's start may have been lost.
		return min(seq, rs[i+1].Start-1), true
	}
	return 0, false
}

// readRuns reads the runs file of dir; a missing file is an empty history.
// A line that does not parse is a *Damage.
func readRuns(dir string) (Runs, error) {
	path := filepath.Join(dir, runsName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var rs Runs
	off := int64(0)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r Run
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &r.Epoch, &r.Start); err != nil || r.Epoch == 0 {
			return rs, &Damage{File: path, Offset: off, Reason: fmt.Sprintf("bad line %q", sc.Text())}
		}
		rs = append(rs, r)
		off += int64(len(sc.Bytes())) + 1
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return rs, &Damage{File: path, Offset: int64(len(data)), Reason: "last line has no line ending"}
	}
	return rs, nil
}

// writeRuns replaces the runs file of dir durably.
func writeRuns(dir string, rs Runs) error {
	var b bytes.Buffer
	for _, r := range rs {
		fmt.Fprintf(&b, "%d %d\n", r.Epoch, r.Start)
	}
	if err := writeFileDurable(filepath.Join(dir, runsName), b.Bytes()); err != nil {
		return fmt.Errorf("store: write runs: %w", err)
	}
	return nil
}

// startRun adds a run starting after change number seq to rs and records
// the history durably in dir.
func startRun(dir string, rs Runs, seq uint64) (Runs, error) {
	r := Run{Start: seq + 1}
	for r.Epoch == 0 {
		r.Epoch = rand.Uint64()
	}
	rs = append(rs, r)
	if len(rs) > maxRuns {
		rs = rs[len(rs)-maxRuns:]
	}
	return rs, writeRuns(dir, rs)
}
