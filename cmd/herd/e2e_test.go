package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"herd/internal/testnet"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// talk sends lines on one connection, half-closes, and returns all replies.
func talk(addr string, lines ...string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return "", err
	}
	nc.(*net.TCPConn).CloseWrite()
	var b strings.Builder
	s := bufio.NewScanner(nc)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		b.WriteString(s.Text() + "\n")
	}
	return b.String(), s.Err()
}

// TestServeProcesses runs a three-server line A–B–C as separate `herd serve`
// processes of the real binary, SIGKILLs the middle one and restarts it.
func TestServeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "herd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addrs := map[string]string{}
	peers := map[string]string{}
	for _, n := range []string{"A", "B", "C"} {
		addrs[n], peers[n] = freeAddr(t), freeAddr(t)
	}
	cfg := fmt.Sprintf(`log_dir = %q
[peer]
retry_max = "200ms"
[[server]]
name = "A"
addr = %q
peer_addr = %q
neighbors = ["B"]
[[server]]
name = "B"
addr = %q
peer_addr = %q
neighbors = ["C"]
[[server]]
name = "C"
addr = %q
peer_addr = %q
`, filepath.Join(dir, "logs"), addrs["A"], peers["A"], addrs["B"], peers["B"], addrs["C"], peers["C"])
	cfgFile := filepath.Join(dir, "herd.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := map[string]*exec.Cmd{}
	start := func(name string) {
		cmd := exec.Command(bin, "serve", name, "-config", cfgFile)
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[name] = cmd
		// Generous: a loaded machine may take seconds to start a process.
		waitFor(t, 30*time.Second, name+" to listen", func() bool {
			nc, err := net.DialTimeout("tcp", addrs[name], time.Second)
			if err == nil {
				nc.Close()
			}
			return err == nil
		})
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	})
	for _, n := range []string{"A", "B", "C"} {
		start(n)
	}
	knows := func(server, line string) func() bool {
		return func() bool {
			out, err := talk(addrs[server], "WHATSAT "+strings.Fields(line)[3]+" 1 1")
			return err == nil && strings.HasPrefix(out, line+"\n")
		}
	}
	at1, err := talk(addrs["A"], "IAMAT one +34.068930-118.445127 1621464827.959498503")
	if err != nil || !strings.HasPrefix(at1, "AT A +") {
		t.Fatalf("IAMAT at A: %q %v", at1, err)
	}
	at1 = strings.TrimSuffix(at1, "\n")
	waitFor(t, 10*time.Second, "C to learn A's update through B", knows("C", at1))

	// SIGKILL the middle server: A keeps serving clients, and B, restarted,
	// catches up on what A learned meanwhile and passes it on to C.
	procs["B"].Process.Kill()
	procs["B"].Wait()
	delete(procs, "B")
	at2, err := talk(addrs["A"], "IAMAT two +1+1 2")
	if err != nil || !strings.HasPrefix(at2, "AT A +") {
		t.Fatalf("IAMAT at A while B is down: %q %v", at2, err)
	}
	at2 = strings.TrimSuffix(at2, "\n")
	start("B")
	waitFor(t, 10*time.Second, "the restarted B to catch up", knows("B", at2))
	waitFor(t, 10*time.Second, "C to learn the update through the restarted B", knows("C", at2))

	// SIGTERM stops a server cleanly.
	a := procs["A"]
	a.Process.Signal(syscall.SIGTERM)
	if err := a.Wait(); err != nil {
		t.Fatalf("A after SIGTERM: %v", err)
	}
	delete(procs, "A")
	logData, err := os.ReadFile(filepath.Join(dir, "logs", "A.log"))
	if err != nil || !strings.Contains(string(logData), `"msg":"client input"`) || !strings.Contains(string(logData), `"msg":"stopped"`) {
		t.Fatalf("A.log: %v\n%s", err, logData)
	}
}
