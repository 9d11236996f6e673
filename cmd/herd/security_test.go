package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"herd/internal/pki"
)

// lockedBuffer is a bytes.Buffer safe for a running command and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMain runs herd with args until the test ends, and returns its stderr.
func startMain(t *testing.T, getenv func(string) string, args ...string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errb := &lockedBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: &lockedBuffer{}, stderr: errb, getenv: getenv}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, e, args) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("herd %s exited %d:\n%s", strings.Join(args, " "), code, errb)
		}
	})
	return errb
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "herd.toml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestProtectedModeRefusesOpenListener(t *testing.T) {
	f := writeConfig(t, `log_dir = ""
[[server]]
name = "A"
addr = "0.0.0.0:0"
advertise = "10.1.2.3:12000"
neighbors = ["B"]
[[server]]
name = "B"
addr = "127.0.0.1:1"
`)
	code, _, errs := runMain(t, "", "serve", "A", "-config", f)
	if code != exitUsage || !strings.Contains(errs, "server[0].addr") || !strings.Contains(errs, "0.0.0.0:0") ||
		!strings.Contains(errs, "[peer.tls]") || !strings.Contains(errs, "insecure = true") {
		t.Fatalf("code %d, stderr:\n%s", code, errs)
	}
}

func TestShortSecretsRefused(t *testing.T) {
	short := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(short, []byte("0123456789abcdef0123\nshort\n"), 0o600)
	f := writeConfig(t, fmt.Sprintf("log_dir = \"\"\npeer_secret_file = %q\n[[server]]\nname = \"A\"\naddr = \"127.0.0.1:0\"\n", short))
	code, _, errs := runMain(t, "", "serve", "A", "-config", f)
	if code != exitUsage || !strings.Contains(errs, "line 2") || !strings.Contains(errs, "at least 16") {
		t.Fatalf("file: code %d, stderr:\n%s", code, errs)
	}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "HERD_PEER_SECRET" {
			return "x"
		}
		return ""
	}}
	if code := Main(context.Background(), e, []string{"serve", "A", "-config", f}); code != exitUsage || !strings.Contains(errb.String(), "HERD_PEER_SECRET is 1 bytes") {
		t.Fatalf("env: code %d, stderr:\n%s", code, errb.String())
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 20*time.Second, addr+" to listen", func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
}

// TestUpAuthenticatesItsOwnLinks: without any credential, `herd up` makes
// a secret for its own links, so another process cannot join its herd.
func TestUpAuthenticatesItsOwnLinks(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	f := writeConfig(t, fmt.Sprintf("log_dir = \"\"\n[[server]]\nname = \"A\"\naddr = %q\nneighbors = [\"B\"]\n[[server]]\nname = \"B\"\naddr = %q\n", a, b))
	startMain(t, func(string) string { return "" }, "up", "-config", f)
	waitListening(t, a)
	nc, err := net.DialTimeout("tcp", a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "HERD-PEER 2 B A %s\n", strings.Repeat("0f", 16))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HERD-PEER-OK 2 A ") || !strings.HasSuffix(line, " secret\n") {
		t.Fatalf("hello answered %q (%v): want a challenge for a secret", line, err)
	}
}

// TestClientTLS: a server with [client.tls] answers `herd client -tls -ca`.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueServer(dir, "A", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	a := freeAddr(t)
	f := writeConfig(t, fmt.Sprintf("log_dir = \"\"\n[client.tls]\ncert_file = %q\nkey_file = %q\n[[server]]\nname = \"A\"\naddr = %q\n",
		filepath.Join(dir, "{name}.crt"), filepath.Join(dir, "{name}.key"), a))
	startMain(t, func(string) string { return "" }, "serve", "A", "-config", f)
	waitListening(t, a)
	code, out, errs := runMain(t, "", "client", "-addr", a, "-tls", "-ca", filepath.Join(dir, "ca.crt"), "IAMAT tls-kiwi +34.068930-118.445127 1621464827.959498503")
	if code != exitOK || !strings.HasPrefix(out, "AT A ") || !strings.HasSuffix(out, " tls-kiwi +34.068930-118.445127 1621464827.959498503\n") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	// The system's roots do not know the herd's CA.
	if code, _, errs := runMain(t, "", "client", "-addr", a, "-tls", "IAMAT x +1+1 1"); code != exitFailure || !strings.Contains(errs, "TLS with") {
		t.Fatalf("unknown CA: code %d, stderr %s", code, errs)
	}
}
