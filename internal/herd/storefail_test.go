package herd

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/store"
)

// flakyFile is a log segment on a disk that is full while full is set.
type flakyFile struct {
	store.File
	full *atomic.Bool
}

func (f *flakyFile) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f *flakyFile) Sync() error {
	if f.full.Load() {
		return syscall.ENOSPC
	}
	return f.File.Sync()
}

func healthz(t *testing.T, m *Member) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + m.MetricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metricValue(t *testing.T, m *Member, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + m.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			return l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	return ""
}

// TestFailingStoreAnswersQuestionMark: while a member's store cannot
// write, an IAMAT that changes its state is answered "? <line>", /healthz
// answers 503 with the reason, herd_store_errors_total counts; WHATSAT
// still works; once the disk accepts writes the member acknowledges again
// by itself.
func TestFailingStoreAnswersQuestionMark(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.DataDir = t.TempDir()
	var full atomic.Bool
	h := startWith(t, Options{Config: cfg, StoreOptions: func(name string, o *store.Options) {
		if name == "Goloman" {
			o.WrapFile = func(f store.File) store.File { return &flakyFile{File: f, full: &full} }
		}
	}})
	g := h.Member("Goloman")
	c := dial(t, g.ClientAddr)
	c.send("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
	if r := c.line(); !strings.HasPrefix(r, "AT Goloman ") {
		t.Fatalf("reply before the failure: %q", r)
	}
	if code, _ := healthz(t, g); code != http.StatusOK {
		t.Fatalf("/healthz = %d before the failure", code)
	}

	full.Store(true)
	line := "IAMAT apple\t+34.068930-118.445127   1621464828.5"
	c.send(line + "\r\n")
	if r := c.line(); r != "? "+line+"\n" {
		t.Fatalf("reply to an update the store cannot save: %q, want %q", r, "? "+line+"\n")
	}
	// Pipelined: every update refused in order, WHATSAT still answered.
	c.send("IAMAT apple2 +1+1 1621464829\nWHATSAT kiwi 10 2\nIAMAT apple3 +1+1 1621464829\n")
	if r := c.line(); r != "? IAMAT apple2 +1+1 1621464829\n" {
		t.Fatalf("pipelined reply 1: %q", r)
	}
	if at, body := c.whatsatReply(); !strings.HasPrefix(at, "AT Goloman ") || !strings.Contains(body, `"status"`) {
		t.Fatalf("WHATSAT while the store fails: %q %q", at, body)
	}
	if r := c.line(); r != "? IAMAT apple3 +1+1 1621464829\n" {
		t.Fatalf("pipelined reply 3: %q", r)
	}
	code, body := healthz(t, g)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") {
		t.Fatalf("/healthz while the store fails = %d %q", code, body)
	}
	if v := metricValue(t, g, "herd_store_errors_total"); v == "" || v == "0" {
		t.Fatalf("herd_store_errors_total = %q", v)
	}

	full.Store(false)
	waitFor(t, 10*time.Second, "the store to resume", func() bool { return g.Store.Health() == nil })
	c.send("IAMAT apple +34.068930-118.445127 1621464830\n")
	if r := c.line(); !strings.HasPrefix(r, "AT Goloman ") {
		t.Fatalf("reply after the disk recovered: %q", r)
	}
	if code, _ := healthz(t, g); code != http.StatusOK {
		t.Fatalf("/healthz = %d after the disk recovered", code)
	}
}

// TestDiskFull runs a server whose data directory is on a small tmpfs,
// fills it, and checks that no update that is not saved gets an AT, that
// a crash at that point keeps every acknowledged update, and that the
// server acknowledges again once space is freed. It needs root (mount).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs to fill needs root; run the tests as root to check a real full disk")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs on %s: %v %s", mnt, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20+512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig(t)
	cfg.Servers = []config.Server{cfg.Servers[0]}
	cfg.Servers[0].Neighbors = nil
	cfg.DataDir = filepath.Join(mnt, "data")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, Options{Config: cfg})
	g := h.Member("Goloman")
	dir := filepath.Join(cfg.DataDir, "Goloman")
	c := dial(t, g.ClientAddr)

	acked := map[string]string{} // client -> the AT line it was answered
	refused := 0
	next := 0
	// send sends n updates of new clients, pipelined, and sorts the replies.
	send := func(n int) (ats, qs int) {
		var b strings.Builder
		lines := make([]string, n)
		for i := range n {
			next++
			lines[i] = fmt.Sprintf("IAMAT full%06d.example.org +34.068930-118.445127 1621464827.%09d", next, next)
			b.WriteString(lines[i] + "\n")
		}
		c.send(b.String())
		for i := range n {
			r := strings.TrimSuffix(c.line(), "\n")
			switch {
			case strings.HasPrefix(r, "AT Goloman "):
				acked[strings.Fields(lines[i])[1]] = r
				ats++
			case r == "? "+lines[i]:
				qs++
			default:
				t.Fatalf("reply %q to %q", r, lines[i])
			}
		}
		return ats, qs
	}
	for refused == 0 && next < 200_000 {
		_, qs := send(200)
		refused += qs
	}
	if refused == 0 {
		t.Fatalf("%d updates and no refusal: the disk never filled", next)
	}
	for range 5 { // the disk stays full: everything refused
		if ats, _ := send(100); ats != 0 {
			t.Fatalf("%d updates acknowledged on a full disk", ats)
		}
	}
	if code, body := healthz(t, g); code != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") {
		t.Fatalf("/healthz on a full disk = %d %q", code, body)
	}
	lost := lostAfterCrash(t, dir, acked)
	t.Logf("disk full after %d acknowledged updates; %d refused; a crash now loses %d acknowledged updates", len(acked), refused, lost)
	if lost != 0 {
		t.Fatalf("a crash on a full disk loses %d acknowledged updates", lost)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the store to resume", func() bool { return g.Store.Health() == nil })
	if ats, qs := send(500); ats != 500 {
		t.Fatalf("after freeing space: %d acknowledged, %d refused", ats, qs)
	}
	if code, _ := healthz(t, g); code != http.StatusOK {
		t.Fatalf("/healthz = %d after space was freed", code)
	}
	if lost := lostAfterCrash(t, dir, acked); lost != 0 {
		t.Fatalf("after resuming, a crash loses %d acknowledged updates", lost)
	}
	if r, err := store.Check(dir); err != nil || r.Damage != nil {
		t.Fatalf("Check of the live directory: %v %v", r.Damage, err)
	}
}

// lostAfterCrash copies the data directory as a crash would leave it
// (whatever the process had written), opens the copy and counts the
// acknowledged updates missing from it.
func lostAfterCrash(t *testing.T, dir string, acked map[string]string) int {
	t.Helper()
	crash := filepath.Join(t.TempDir(), "crash")
	if err := os.MkdirAll(crash, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, st, err := store.Open(store.Options{Dir: crash})
	if err != nil {
		t.Fatalf("Open after a crash: %v", err)
	}
	defer s.Close()
	have := map[string]bool{}
	for _, e := range st.Entries {
		have[e.Line] = true
	}
	lost := 0
	for _, l := range acked {
		if !have[l] {
			lost++
		}
	}
	return lost
}
