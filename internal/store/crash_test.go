package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	crashDirEnv  = "HERD_STORE_CRASH_DIR"
	crashModeEnv = "HERD_STORE_CRASH_MODE"
)

// TestCrashHelper is the child process of TestCrash: it appends from
// several goroutines and prints each seq once its done channel is closed,
// until it is killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	o := Options{Dir: dir}
	switch os.Getenv(crashModeEnv) {
	case "fast":
		o.Sync = SyncFast
	case "flaky":
		// The disk fails for stretches of writes and of fsyncs, and
		// recovers, again and again.
		fs := &faults{flapWrites: 7, flapSyncs: 5}
		o.WrapFile, o.retryMin, o.retryMax = fs.wrap, time.Millisecond, 2*time.Millisecond
	}
	s, st, err := Open(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	m := newModel(st.Seq)
	var outMu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			// Bounded by acknowledgements, not attempts, so a disk that
			// fails most writes still reaches what the parent waits for;
			// the parent kills us long before either bound.
			deadline := time.Now().Add(2 * time.Minute)
			for i, acked := 0, 0; acked < 50_000 && i < 10*100_000 && time.Now().Before(deadline); i++ {
				done := make(chan error, 1)
				seq := m.set(s, uint64(g*10*100_000+i), st.Seq+uint64(i), done)
				if err := <-done; err != nil {
					continue // not saved: not acknowledged
				}
				acked++
				outMu.Lock()
				fmt.Fprintf(os.Stdout, "acked %d\n", seq)
				outMu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3) // not killed: the parent reports it
}

// TestCrash kills a process that appends with SIGKILL, twice, and checks
// that every append it acknowledged is recovered.
func TestCrash(t *testing.T) {
	for _, mode := range []string{"always", "fast", "flaky"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			acked := map[uint64]bool{}
			for round := range 2 {
				n := crashChild(t, dir, mode, 2000+1000*round)
				for k := range n {
					acked[k] = true
				}
				s, st := open(t, Options{Dir: dir})
				got := map[uint64]bool{}
				for _, e := range st.Entries {
					if got[e.Seq] {
						t.Errorf("seq %d recovered twice", e.Seq)
					}
					got[e.Seq] = true
					if !strings.HasPrefix(e.Line, "AT Goloman ") {
						t.Errorf("bad line %q", e.Line)
					}
				}
				missing := 0
				for k := range acked {
					if !got[k] {
						missing++
					}
				}
				t.Logf("round %d: %d acknowledged in all, %d recovered, seq %d", round, len(acked), len(st.Entries), st.Seq)
				if missing > 0 {
					t.Fatalf("round %d: %d acknowledged appends lost", round, missing)
				}
				closeStore(t, s)
			}
		})
	}
}

// crashChild runs TestCrashHelper on dir, kills it after it acknowledged
// killAfter appends, and returns every seq it acknowledged.
func crashChild(t *testing.T, dir, mode string, killAfter int) map[uint64]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+mode)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "acked ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Errorf("bad line %q", sc.Text())
			continue
		}
		acked[n] = true
		if len(acked) == killAfter {
			cmd.Process.Kill() // SIGKILL; lines already in the pipe are still read
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child not killed mid-stream: %v; %d acknowledged; stderr:\n%s", err, len(acked), stderr.String())
	}
	return acked
}
