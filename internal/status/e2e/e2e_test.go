package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"herd/internal/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The environment variables the test reads.
const (
	// envChromium overrides the browser's path (default /usr/bin/chromium).
	envChromium = "HERD_CHROMIUM"
	// envRequire makes a missing browser fail the test instead of skipping it.
	envRequire = "HERD_E2E_REQUIRE"
	// envScreenshot names a PNG file to write a screenshot of the page to;
	// a relative path is taken from the module's root.
	envScreenshot = "HERD_SCREENSHOT"
)

// topology is the default five-server herd.
var topology = map[string][]string{
	"Goloman": {"Hands", "Holiday", "Wilkes"},
	"Hands":   {"Goloman", "Wilkes"},
	"Holiday": {"Goloman", "Welsh", "Wilkes"},
	"Welsh":   {"Holiday"},
	"Wilkes":  {"Goloman", "Hands", "Holiday"},
}

var names = []string{"Goloman", "Hands", "Holiday", "Welsh", "Wilkes"}

// token opens every fake server's status page, as [metrics] token_file does.
const token = "e2e-status-page-token-0123456789"

// fakeServer is one server of the herd as its status listener sees it: a
// status.Handler on 127.0.0.1 fed by a State the test changes.
type fakeServer struct {
	name   string
	ln     net.Listener
	http   *http.Server
	served chan struct{} // closed when Serve has returned
	recent *status.Recent

	mu    sync.Mutex   // guards state
	state status.State // without Recent, filled from recent
}

// State returns a copy of the server's state, safe to hand to the handler.
func (s *fakeServer) State() status.State {
	s.mu.Lock()
	st := s.state
	st.Counters = maps.Clone(st.Counters)
	st.Links = slices.Clone(st.Links)
	s.mu.Unlock()
	st.Recent = s.recent.List()
	return st
}

// update changes the server's state under its lock.
func (s *fakeServer) update(f func(*status.State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.state)
}

// stop closes the server's listener and connections and waits for Serve to
// return.
func (s *fakeServer) stop(t *testing.T) {
	t.Helper()
	if err := s.http.Close(); err != nil {
		t.Errorf("close %s: %v", s.name, err)
	}
	<-s.served
}

// startHerd starts the five fake servers, each knowing the whole topology.
func startHerd(t *testing.T) map[string]*fakeServer {
	t.Helper()
	herd := map[string]*fakeServer{}
	var nodes []status.Node
	for i, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		herd[name] = &fakeServer{name: name, ln: ln, served: make(chan struct{}), recent: status.NewRecent(50)}
		nodes = append(nodes, status.Node{
			Name:      name,
			Addr:      fmt.Sprintf("127.0.0.1:%d", 12000+i),
			Metrics:   ln.Addr().String(),
			Neighbors: topology[name],
		})
	}
	origins := map[string]bool{}
	for _, n := range nodes {
		origins["http://"+n.Metrics] = true
	}
	started := time.Now().Add(-83 * time.Minute)
	for i, name := range names {
		s := herd[name]
		var links []status.Link
		for _, peer := range topology[name] {
			links = append(links, status.Link{Peer: peer, Up: true, Reconnects: 1, SyncRecords: 3})
		}
		s.state = status.State{
			Server:   name,
			Addr:     nodes[i].Addr,
			PeerAddr: nodes[i].Addr,
			Started:  started.Add(time.Duration(i) * 7 * time.Second),
			Clients:  2,
			Counters: map[string]float64{
				"iamat": float64(40 + 13*i), "whatsat": float64(9 + 5*i), "invalid": float64(i % 3),
				"conns_open": float64(1 + i%2), "flood_in": float64(120 + 7*i), "flood_out": float64(260 - 11*i),
			},
			Links: links,
			Herd:  nodes,
		}
		h := status.Handler(status.Options{State: s.State, Token: token, AllowOrigin: func(o string) bool { return origins[o] }})
		s.http = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			defer close(s.served)
			if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve %s: %v", name, err)
			}
		}()
	}
	t.Cleanup(func() {
		for _, s := range herd {
			s.http.Close()
			<-s.served
		}
	})
	return herd
}

// flood records a location as the herd would: at origin from the client,
// then at every other server listed in path, from the server before it.
func flood(herd map[string]*fakeServer, at time.Time, client, origin, coords string, path ...[2]string) {
	line := fmt.Sprintf("AT %s +0.081234567 %s %s %d.%09d", origin, client, coords, at.Unix(), at.Nanosecond())
	herd[origin].recent.Add(status.Update{Time: at, Client: client, Line: line, From: status.FromClient})
	for i, hop := range path { // hop: {from, to}
		herd[hop[1]].recent.Add(status.Update{
			Time: at.Add(time.Duration(i+1) * 1700 * time.Microsecond), Client: client, Line: line, From: hop[0],
		})
	}
}

// browser starts headless Chromium and returns a tab's context, or skips the
// test when Chromium is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv(envChromium)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install the Debian packages chromium and chromium-driver, "+
			"or run scripts/status-e2e.sh, which does; %s=path selects another browser", path, err, envChromium)
		if os.Getenv(envRequire) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var out syncBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		// Only 127.0.0.1: no host name resolves.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 840),
		chromedp.CombinedOutput(&out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit, before t.TempDir's removal
		if t.Failed() {
			t.Logf("chromium output (tail):\n%s", out.tail(4000))
		}
	})
	// The first Do starts the browser and ties it to the context it is
	// given, so it gets the tab's context and a watchdog, not a timeout.
	watchdog := time.AfterFunc(30*time.Second, cancelTab)
	defer watchdog.Stop()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// waitFor evaluates the JavaScript expression cond in the page every 100ms
// until it is true, failing the test after timeout with the value of the
// expression explain.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what, cond, explain string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := eval[bool](ctx, cond)
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			got, err := eval[string](ctx, explain)
			t.Fatalf("after %v, still waiting for %s (last error %v); page: %s %v", timeout, what, lastErr, got, err)
		}
		<-tick.C
	}
}

// eval evaluates a JavaScript expression in the page, with a bound of 5s.
func eval[T any](ctx context.Context, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// linkStates describes the page's links and servers, for failure messages.
const linkStates = `[...document.querySelectorAll('#graph [data-link], #graph [data-server]')]
	.map(e => (e.dataset.link || e.dataset.server) + '=' + e.dataset.state).join(' ')
	+ ' | ' + document.getElementById('note').textContent`

func TestStatusPage(t *testing.T) {
	ctx := browser(t)
	herd := startHerd(t)
	now := time.Now()
	flood(herd, now.Add(-41*time.Second), "lemon.cs.ucla.edu", "Hands", "+34.068930-118.445127",
		[2]string{"Hands", "Goloman"}, [2]string{"Hands", "Wilkes"}, [2]string{"Goloman", "Holiday"}, [2]string{"Holiday", "Welsh"})
	flood(herd, now.Add(-26*time.Second), "mango.example.net", "Welsh", "+51.507351-000.127758",
		[2]string{"Welsh", "Holiday"}, [2]string{"Holiday", "Goloman"}, [2]string{"Holiday", "Wilkes"}, [2]string{"Goloman", "Hands"})
	flood(herd, now.Add(-9*time.Second), "plum.example.org", "Goloman", "+48.856613+002.352222",
		[2]string{"Goloman", "Hands"}, [2]string{"Goloman", "Holiday"}, [2]string{"Goloman", "Wilkes"}, [2]string{"Holiday", "Welsh"})
	for _, s := range herd {
		s.update(func(st *status.State) { st.Clients = 3 })
	}

	url := "http://" + herd["Goloman"].ln.Addr().String() + "/"
	nav, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Without the token the browser cannot open the page (headless, it has
	// no prompt to ask for one).
	if err := chromedp.Do(nav, chromedp.Navigate(url)); err == nil || !strings.Contains(err.Error(), "ERR_INVALID_AUTH_CREDENTIALS") {
		t.Fatalf("open %s without the token: %v, want an authentication error", url, err)
	}
	// Logged in: every request of the page carries the token.
	login := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}})
		return err
	})
	if err := chromedp.Do(nav, login, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s with the token: %v", url, err)
	}

	waitFor(t, ctx, 10*time.Second, "five servers, all up",
		`document.querySelectorAll('#graph [data-server][data-state="up"]').length === 5`, linkStates)
	waitFor(t, ctx, 10*time.Second, "six links, all up",
		`document.querySelectorAll('#graph [data-link][data-state="up"]').length === 6`, linkStates)
	got, err := eval[[]string](ctx, `[...document.querySelectorAll('#graph [data-link]')].map(e => e.dataset.link).sort()`)
	want := []string{"Goloman--Hands", "Goloman--Holiday", "Goloman--Wilkes", "Hands--Wilkes", "Holiday--Welsh", "Holiday--Wilkes"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("links drawn = %v (%v), want %v", got, err, want)
	}
	waitFor(t, ctx, 5*time.Second, "Goloman's recent updates listed",
		`document.querySelectorAll('#updates tbody tr').length === 3`, `document.querySelector('#updates').innerText`)

	herd["Welsh"].stop(t)
	waitFor(t, ctx, 10*time.Second, "the Holiday--Welsh link down",
		`document.querySelector('[data-link="Holiday--Welsh"]').dataset.state === "down"`, linkStates)
	waitFor(t, ctx, 5*time.Second, "Welsh down and the other links still up",
		`document.querySelector('[data-server="Welsh"]').dataset.state === "down" &&
		 document.querySelectorAll('#graph [data-link][data-state="up"]').length === 5`, linkStates)
	// What Holiday itself would report after losing Welsh.
	herd["Holiday"].update(func(st *status.State) {
		for i := range st.Links {
			if st.Links[i].Peer == "Welsh" {
				st.Links[i].Up = false
				st.Links[i].Queued = 4
			}
		}
	})

	flood(herd, time.Now(), "kiwi.cs.ucla.edu", "Goloman", "+34.068930-118.445127",
		[2]string{"Goloman", "Hands"}, [2]string{"Goloman", "Holiday"}, [2]string{"Goloman", "Wilkes"})
	for _, name := range []string{"Goloman", "Hands", "Holiday", "Wilkes"} {
		herd[name].update(func(st *status.State) { st.Clients++; st.Counters["flood_in"]++ })
	}
	herd["Goloman"].update(func(st *status.State) { st.Counters["iamat"]++ })
	waitFor(t, ctx, 5*time.Second, "the new IAMAT at the top of the updates",
		`(r => r && r.dataset.updateClient === "kiwi.cs.ucla.edu" && r.innerText.includes("client"))
		 (document.querySelector('#updates tbody tr'))`, `document.querySelector('#updates').innerText`)
	waitFor(t, ctx, 5*time.Second, "Goloman's counters updated",
		`document.querySelector('#servers tr[data-row="Goloman"]').innerText.includes("4")`,
		`document.querySelector('#servers').innerText`)

	if path := os.Getenv(envScreenshot); path != "" {
		screenshot(t, ctx, path)
	}

	// Client ids are text, never markup.
	flood(herd, time.Now(), `<img id=x src=x onerror="document.body.dataset.pwned=1">`, "Goloman", "+00.0+000.0")
	waitFor(t, ctx, 5*time.Second, "a client id with markup listed as text",
		`[...document.querySelectorAll('#updates tbody tr')].some(r => r.innerText.includes("<img id=x"))`,
		`document.querySelector('#updates').innerText`)
	if bad, err := eval[bool](ctx, `!!document.querySelector('#updates img') || !!document.body.dataset.pwned`); err != nil || bad {
		t.Errorf("client id rendered as markup (%v)", err)
	}
}

// screenshot writes a PNG of the page to path, relative to the module's
// root unless absolute, once the arrival highlights have faded.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, path)
	}
	waitFor(t, ctx, 5*time.Second, "highlights to fade", `!document.querySelector('tr.new')`, `"rows still new"`)
	// Let the CSS transitions and the flash of the links finish.
	waitFor(t, ctx, 5*time.Second, "animations to end",
		`document.getAnimations().filter(a => a.effect && a.effect.getComputedTiming().iterations !== Infinity).length === 0`,
		`String(document.getAnimations().length)`)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// moduleRoot returns the nearest directory at or above the working
// directory holding a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// syncBuffer is a bytes.Buffer safe for the browser's output goroutine and
// the test.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes written.
func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
