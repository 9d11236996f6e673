package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"herd/internal/faultproxy"
)

// The fault tests run the default five-server herd as real `herd serve`
// processes whose links all pass through fault proxies (one per dialing
// direction), keep IAMAT load on it from several clients, inject a fault,
// stop the load, wait for the herd to settle, and check that every server
// holds, for every client, the same record: the newest one a client was
// told about (or a newer one still in flight when a server died) — nothing
// lost, nothing stale, nothing invented.

var topology = map[string][]string{
	"Goloman": {"Hands", "Holiday", "Wilkes"},
	"Hands":   {"Goloman", "Wilkes"},
	"Holiday": {"Goloman", "Welsh", "Wilkes"},
	"Welsh":   {"Holiday"},
	"Wilkes":  {"Goloman", "Hands", "Holiday"},
}

var serverNames = []string{"Goloman", "Hands", "Holiday", "Welsh", "Wilkes"}

type faultHerd struct {
	t       *testing.T
	hist    *history
	bin     string
	dir     string
	client  map[string]string // name -> client address
	peer    map[string]string // name -> real peer address
	proxies map[[2]string]*faultproxy.Proxy
	mu      sync.Mutex
	procs   map[string]*exec.Cmd // guarded by mu
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newFaultHerd(t *testing.T) *faultHerd {
	f := &faultHerd{t: t, hist: &history{acked: map[string]int64{}, sent: map[string]map[int64]bool{}}, bin: buildBinary(t), dir: t.TempDir(), client: map[string]string{}, peer: map[string]string{},
		proxies: map[[2]string]*faultproxy.Proxy{}, procs: map[string]*exec.Cmd{}}
	for _, n := range serverNames {
		f.client[n], f.peer[n] = freeAddr(t), freeAddr(t)
	}
	for _, from := range serverNames {
		for _, to := range topology[from] {
			p, err := faultproxy.New(f.peer[to])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			f.proxies[[2]string{from, to}] = p
		}
	}
	// Each server gets its own config: its own addresses, and its
	// neighbours' peer addresses replaced by the proxies it dials through.
	for _, me := range serverNames {
		var b strings.Builder
		fmt.Fprintf(&b, "log_dir = %q\ndata_dir = %q\n[peer]\nretry_max = \"100ms\"\nheartbeat = \"300ms\"\ndead_after = \"1500ms\"\nqueue_size = 4096\n",
			filepath.Join(f.dir, "logs"), filepath.Join(f.dir, "data"))
		for _, n := range serverNames {
			peerAddr := f.peer[n]
			if n != me {
				if p, ok := f.proxies[[2]string{me, n}]; ok {
					peerAddr = p.Addr()
				} else {
					peerAddr = freeAddr(t) // not a neighbour: never dialed
				}
			}
			fmt.Fprintf(&b, "[[server]]\nname = %q\naddr = %q\npeer_addr = %q\nneighbors = [%s]\n",
				n, f.client[n], peerAddr, quoteAll(topology[n]))
		}
		if err := os.WriteFile(f.config(me), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.procs {
			p.Process.Kill()
			p.Wait()
		}
	})
	f.hist.clock.Store(time.Now().Unix())
	for _, n := range serverNames {
		f.start(n)
	}
	return f
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func (f *faultHerd) config(name string) string { return filepath.Join(f.dir, name+".toml") }

func (f *faultHerd) start(name string) {
	cmd := exec.Command(f.bin, "serve", name, "-config", f.config(name))
	cmd.Env = append(os.Environ(), "HERD_PEER_SECRET=fault-test-secret-0123456789")
	if err := cmd.Start(); err != nil {
		panic(err) // cannot happen: the binary was just built
	}
	f.mu.Lock()
	f.procs[name] = cmd
	f.mu.Unlock()
	// Generous: a loaded machine may take seconds to start a process.
	waitFor(f.t, 30*time.Second, name+" to listen", func() bool { // f.t: only Fatal on timeout
		nc, err := net.DialTimeout("tcp", f.client[name], time.Second)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
}

func (f *faultHerd) kill(name string) {
	f.mu.Lock()
	p := f.procs[name]
	delete(f.procs, name)
	f.mu.Unlock()
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
}

// cut sets the mode of both directions of the link a–b.
func (f *faultHerd) cut(a, b string, m faultproxy.Mode) {
	f.proxies[[2]string{a, b}].SetMode(m)
	f.proxies[[2]string{b, a}].SetMode(m)
}

// history is what clients sent and were told, over every scenario.
type history struct {
	clock atomic.Int64 // the next client time; only grows
	mu    sync.Mutex
	acked map[string]int64          // guarded by mu: client -> newest acknowledged time
	sent  map[string]map[int64]bool // guarded by mu: client -> every time sent
}

// load is IAMAT traffic from several clients, each owning some client ids.
type load struct {
	*history
	f     *faultHerd
	stop  chan struct{}
	wg    sync.WaitGroup
	ok    atomic.Int64
	fails atomic.Int64
}

const clientsPerWorker, workers = 40, 4

func (f *faultHerd) startLoad() *load {
	l := &load{history: f.hist, f: f, stop: make(chan struct{})}
	clock := &f.hist.clock
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var nc net.Conn
			var r *bufio.Reader
			defer func() {
				if nc != nil {
					nc.Close()
				}
			}()
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if nc == nil {
					var err error
					nc, err = net.DialTimeout("tcp", f.client[serverNames[rand.IntN(len(serverNames))]], time.Second)
					if err != nil {
						l.fails.Add(1)
						nc = nil
						continue
					}
					r = bufio.NewReader(nc)
				}
				client := fmt.Sprintf("w%d-c%d", w, rand.IntN(clientsPerWorker))
				tm := clock.Add(1)
				l.mu.Lock()
				if l.sent[client] == nil {
					l.sent[client] = map[int64]bool{}
				}
				l.sent[client][tm] = true
				l.mu.Unlock()
				nc.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintf(nc, "IAMAT %s +%d.0+%d.0 %d\n", client, w, i%90, tm)
				reply, err := r.ReadString('\n')
				if err != nil || !strings.HasPrefix(reply, "AT ") {
					l.fails.Add(1)
					nc.Close()
					nc = nil
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.acked[client] = max(l.acked[client], tm)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// verify waits until every server holds the same record for every client
// and checks it against what the clients were told.
func (f *faultHerd) verify(t *testing.T, l *load, scenario string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		last = f.check(l)
		if last == "" {
			t.Logf("%s: ok (%d acknowledged IAMATs, %d failed attempts during faults)", scenario, l.ok.Load(), l.fails.Load())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the herd did not settle: %s", scenario, last)
		}
		time.Sleep(200 * time.Millisecond) // polling interval while the herd settles
	}
}

// check returns "" when the herd is consistent, else what is wrong.
func (f *faultHerd) check(l *load) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for client, acked := range l.acked {
		var first string
		for _, n := range serverNames {
			out, err := talk(f.client[n], "WHATSAT "+client+" 0.001 1")
			if err != nil {
				return fmt.Sprintf("%s: %v", n, err)
			}
			at := strings.SplitN(out, "\n", 2)[0]
			fields := strings.Fields(at)
			if len(fields) != 6 || fields[0] != "AT" {
				return fmt.Sprintf("%s does not know %s: %q", n, client, at)
			}
			var tm int64
			fmt.Sscan(fields[5], &tm)
			switch {
			case tm < acked:
				return fmt.Sprintf("%s holds %s at time %d, older than the acknowledged %d", n, client, tm, acked)
			case !l.sent[client][tm]:
				return fmt.Sprintf("%s holds %s at time %d, which no client sent (invented)", n, client, tm)
			case first == "":
				first = at
			case at != first:
				return fmt.Sprintf("servers disagree on %s: %q vs %q", client, first, at)
			}
		}
	}
	return ""
}

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herd processes under faults")
	}
	f := newFaultHerd(t)
	settle := func() { time.Sleep(400 * time.Millisecond) } // let load run with the fault in place

	t.Run("kill -9 and restart each server in turn", func(t *testing.T) {
		l := f.startLoad()
		for _, n := range serverNames {
			settle()
			f.kill(n)
			settle()
			f.start(n)
		}
		settle()
		l.finish()
		f.verify(t, l, "kill -9 each server")
	})
	t.Run("kill -9 every server at once", func(t *testing.T) {
		l := f.startLoad()
		settle()
		for _, n := range serverNames {
			f.kill(n)
		}
		l.finish()
		for _, n := range serverNames {
			f.start(n)
		}
		f.verify(t, l, "kill -9 all at once")
	})
	t.Run("partition into two halves and heal", func(t *testing.T) {
		l := f.startLoad()
		settle()
		// {Goloman, Hands, Wilkes} | {Holiday, Welsh}
		f.cut("Goloman", "Holiday", faultproxy.Cut)
		f.cut("Holiday", "Wilkes", faultproxy.Cut)
		settle()
		settle()
		f.cut("Goloman", "Holiday", faultproxy.Pass)
		f.cut("Holiday", "Wilkes", faultproxy.Pass)
		settle()
		l.finish()
		f.verify(t, l, "partition and heal")
	})
	t.Run("flapping link", func(t *testing.T) {
		l := f.startLoad()
		for i := range 12 {
			mode := faultproxy.Cut
			if i%2 == 1 {
				mode = faultproxy.Pass
			}
			f.cut("Holiday", "Welsh", mode)
			time.Sleep(150 * time.Millisecond) // the flap period
		}
		f.cut("Holiday", "Welsh", faultproxy.Pass)
		settle()
		l.finish()
		f.verify(t, l, "flapping link")
	})
	t.Run("neighbour that accepts but never reads", func(t *testing.T) {
		l := f.startLoad()
		settle()
		f.cut("Goloman", "Hands", faultproxy.BlackHole)
		before := l.ok.Load()
		settle()
		settle()
		if l.ok.Load() == before {
			t.Fatal("clients were not served while a link was black-holed")
		}
		f.cut("Goloman", "Hands", faultproxy.Pass)
		settle()
		l.finish()
		f.verify(t, l, "black-holed link")
	})
}
