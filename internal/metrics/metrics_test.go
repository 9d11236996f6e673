package metrics

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"herd/internal/peer"
	"herd/internal/store"
)

var update = flag.Bool("update", false, "rewrite testdata/names.golden")

// badMAC counts one link closed for a bad code.
var badMAC = func() (d [len(peerReasons)]int64) {
	d[peer.CloseBadMAC] = 1
	return d
}()

var peerReasons = peer.LinkState{}.Down

// full is a Snapshot with every optional part present.
func full() Snapshot {
	return Snapshot{
		Clients: 3,
		Links:   []peer.LinkState{{Peer: "Hands", Up: true, Down: badMAC}},
		Places:  &Places{Hits: 1},
		Peer:    PeerAuth{Refused: map[string]int64{"credential": 2}, CertExpiry: time.Unix(2000000000, 0)},
		Store:   &store.Stats{Errors: 1},
	}
}

// TestNames compares every herd_ metric, with its type and label names,
// against testdata/names.golden: dashboards and alerts depend on them, so
// a rename is a decision, made with -update.
func TestNames(t *testing.T) {
	m := New("Goloman", full)
	m.Command(CmdIAMAT, OutcomeOK)
	m.Reply(CmdIAMAT, time.Millisecond)
	m.Places(time.Millisecond, "ok")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "herd_") {
			continue
		}
		labels := map[string]bool{}
		for _, met := range mf.GetMetric() {
			for _, l := range met.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := make([]string, 0, len(labels))
		for l := range labels {
			names = append(names, l)
		}
		slices.Sort(names)
		lines = append(lines, mf.GetName()+" "+strings.ToLower(mf.GetType().String())+" {"+strings.Join(names, ",")+"}")
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "names.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("metric names differ from %s (run with -update if the change is meant):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	for _, l := range lines {
		if !strings.Contains(l, "server") {
			t.Errorf("%s: no server label", l)
		}
	}
}

// TestNilServer: every method is safe on a nil *Server.
func TestNilServer(t *testing.T) {
	var m *Server
	m.Command(CmdIAMAT, OutcomeOK)
	m.Reply(CmdWHATSAT, time.Second)
	m.ConnOpened()
	m.ConnClosed()
	m.ConnRejected(LimitConns)
	m.Places(time.Second, "error")
	if m.Counts() != nil {
		t.Fatal("a nil Server counted")
	}
}
