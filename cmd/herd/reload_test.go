package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReload runs `herd up` as a process, adds a server linked to
// the herd to its config file, and sends SIGHUP: the new server starts and
// gets the herd's updates, a broken config is refused, and a client that
// keeps reporting meanwhile gets every answer.
func TestSIGHUPReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	a, b, c := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgFile := filepath.Join(dir, "herd.toml")
	two := fmt.Sprintf("log_dir = \"\"\n[peer]\nretry_max = \"100ms\"\n[[server]]\nname = \"A\"\naddr = %q\nneighbors = [\"B\"]\n[[server]]\nname = \"B\"\naddr = %q\n", a, b)
	if err := os.WriteFile(cfgFile, []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "up", "-config", cfgFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log strings.Builder
	logged := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(log.String(), s)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("herd up said:\n%s", log.String())
			mu.Unlock()
		}
	})
	waitFor(t, 30*time.Second, "the herd up", func() bool { return logged("SIGHUP reloads") })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	failures := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			out, err := talk(a, fmt.Sprintf("IAMAT steady +1+1 %d", 10+i))
			if err != nil || !strings.HasPrefix(out, "AT A ") {
				failures++
			}
		}
	}()

	three := two + fmt.Sprintf("[[server]]\nname = \"C\"\naddr = %q\nneighbors = [\"B\"]\n", c)
	if err := os.WriteFile(cfgFile, []byte(three), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 20*time.Second, "C started by the reload", func() bool { return logged("reload: started server C") })
	line, err := talk(a, "IAMAT reloaded +2+2 1")
	if err != nil {
		t.Fatal(err)
	}
	at := strings.TrimSuffix(line, "\n")
	waitFor(t, 10*time.Second, "C to learn an update made at A", func() bool {
		out, err := talk(c, "WHATSAT reloaded 1 1")
		return err == nil && strings.HasPrefix(out, at+"\n")
	})

	if err := os.WriteFile(cfgFile, []byte(three+"[[server]]\nname = \"A\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the broken config refused", func() bool { return logged("reload refused, the running config stays") })
	if out, err := talk(c, "WHATSAT reloaded 1 1"); err != nil || !strings.HasPrefix(out, at+"\n") {
		t.Fatalf("after a refused reload C answers %q, %v", out, err)
	}
	close(stop)
	wg.Wait()
	if failures > 0 {
		t.Fatalf("%d client requests failed during the reloads", failures)
	}
}
