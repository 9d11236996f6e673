package herd

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

// A run is one start of a server with durable state. Change numbers
// continue across runs, but a crash can lose the last changes of a run
// after they were sent to neighbours; the next run then reuses their
// numbers for other changes. So each run announces its own epoch, and a
// neighbour's position in an earlier run is trusted only up to where the
// next run started (see docs/PROTOCOL.md, "Catch-up").
type run struct {
	epoch uint64
	start uint64 // the first change number of the run
}

// runs is a server's history of runs, oldest first; the last is current.
type runs []run

const runsFile = "runs"

// maxRuns bounds the history; a neighbour whose position is older than
// that many restarts gets a full copy.
const maxRuns = 64

// startRun records a new run starting after change number seq in dir,
// durably, and returns the history including it.
func startRun(dir string, seq uint64) (runs, error) {
	path := filepath.Join(dir, runsFile)
	var rs runs
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var r run
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &r.epoch, &r.start); err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
			}
			rs = append(rs, r)
		}
	}
	r := run{start: seq + 1}
	for r.epoch == 0 {
		r.epoch = rand.Uint64()
	}
	rs = append(rs, r)
	if len(rs) > maxRuns {
		rs = rs[len(rs)-maxRuns:]
	}
	var b bytes.Buffer
	for _, r := range rs {
		fmt.Fprintf(&b, "%d %d\n", r.epoch, r.start)
	}
	return rs, writeFileDurable(path, b.Bytes())
}

// current is the epoch of the running server.
func (rs runs) current() uint64 { return rs[len(rs)-1].epoch }

// deltaFrom says from which change number a neighbour whose position is
// (epoch, seq) must be sent changes.
func (rs runs) deltaFrom(epoch, seq uint64) (uint64, bool) {
	for i, r := range rs {
		if r.epoch != epoch {
			continue
		}
		if i == len(rs)-1 {
			return seq, true
		}
		// Changes of run i past the next run's start may have been lost.
		return min(seq, rs[i+1].start-1), true
	}
	return 0, false
}

// writeFileDurable replaces path with data: write a temporary file, sync,
// close, rename, sync the directory.
func writeFileDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
