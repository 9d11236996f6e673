package herd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func durableConfig(t *testing.T) *Herd {
	cfg := defaultConfig(t)
	cfg.DataDir = t.TempDir()
	return startHerd(t, cfg, nil)
}

// TestRestartRecoversStateAndCatchesUpByDelta: a server with a data_dir
// comes back with its table, and its neighbour sends it only what changed
// while it was down.
func TestRestartRecoversStateAndCatchesUpByDelta(t *testing.T) {
	const clients, moved = 2000, 50
	h := durableConfig(t)
	load(t, h.Member("Hands").ClientAddr, "d", clients, 1)
	welsh, holiday := h.Member("Welsh"), h.Member("Holiday")
	waitFor(t, 10*time.Second, "Welsh to learn every client", func() bool { return welsh.Table.Len() == clients })
	waitFor(t, 5*time.Second, "each of Holiday and Welsh to have the other's last change", func() bool {
		return linkOf(welsh, "Holiday").Pos.Seq == holiday.Table.Seq() && linkOf(holiday, "Welsh").Pos.Seq == welsh.Table.Seq()
	})
	addr := welsh.ClientAddr
	if err := h.Stop(context.Background(), "Welsh"); err != nil {
		t.Fatal(err)
	}
	load(t, h.Member("Hands").ClientAddr, "d", moved, 2)
	waitFor(t, 5*time.Second, "Holiday to learn the moves", func() bool {
		r, _ := holiday.Table.Get(fmt.Sprintf("d%d", moved-1))
		return strings.HasSuffix(r.Line, " 2")
	})
	before := linkOf(holiday, "Welsh")
	if err := h.Restart("Welsh", addr, addr); err != nil {
		t.Fatal(err)
	}
	welsh = h.Member("Welsh")
	if n := welsh.Table.Len(); n != clients {
		t.Fatalf("restarted Welsh holds %d clients, want %d from its data dir", n, clients)
	}
	// Holiday counts its catch-up once it has written it, which may be
	// after Welsh has applied it: wait for both.
	waitFor(t, 5*time.Second, "Welsh to catch up on the moves, and Holiday to count it", func() bool {
		r, _ := welsh.Table.Get(fmt.Sprintf("d%d", moved-1))
		return strings.HasSuffix(r.Line, " 2") && linkOf(holiday, "Welsh").SyncRecords > before.SyncRecords
	})
	after := linkOf(holiday, "Welsh")
	if sent := after.SyncRecords - before.SyncRecords; sent < moved || sent > 2*moved {
		t.Fatalf("Holiday sent %d records to the restarted Welsh, want about %d (of %d clients)", sent, moved, clients)
	}
	// And Welsh, which learned nothing new while down, sends Holiday nothing.
	if sent := linkOf(welsh, "Holiday").SyncRecords; sent != 0 {
		t.Fatalf("the restarted Welsh sent %d records to Holiday, want 0", sent)
	}
}
