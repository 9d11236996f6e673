package herd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/places"
	"herd/internal/places/cache"
)

// metricName matches herd's metric names in dashboard and rule expressions.
var metricName = regexp.MustCompile(`\bherd_[a-z0-9_]+`)

// TestDeployFilesUseRealMetrics checks that every herd_… name the Grafana
// dashboard and the Prometheus alert rules use is on /metrics of a running
// server with a data directory, TLS peer links and an http listener, after
// it answered an IAMAT, a WHATSAT and an HTTP request.
func TestDeployFilesUseRealMetrics(t *testing.T) {
	dash := dashboardNames(t, "../../deploy/grafana/herd.json")
	rules := ruleNames(t, "../../deploy/prometheus/alerts.yml")
	for _, want := range []string{"herd_clients_known", "herd_commands_total", "herd_reply_duration_seconds_bucket",
		"herd_flood_received_total", "herd_flood_sent_total", "herd_flood_dropped_total", "herd_peer_link_up",
		"herd_catchup_records_total", "herd_places_lookups_total", "herd_places_upstream_errors_total",
		"herd_places_duration_seconds_bucket", "herd_store_fsync_last_seconds", "herd_store_errors_total",
		"herd_peer_handshake_refused_total", "herd_peer_link_down_total", "herd_http_requests_total"} {
		if !slices.Contains(dash, want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	for _, want := range []string{"herd_peer_link_up", "herd_store_errors_total", "herd_flood_dropped_total",
		"herd_places_lookups_total", "herd_reply_duration_seconds_bucket", "herd_peer_cert_expiry_timestamp_seconds"} {
		if !slices.Contains(rules, want) {
			t.Errorf("the alert rules do not use %s", want)
		}
	}

	// A and B run as two herds in this process, so that B can stop while A
	// runs and A counts the link down. Their listeners are made first, on
	// free ports, and handed to Start through Options.Listen.
	lns := map[string]net.Listener{}
	addr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[ln.Addr().String()] = ln
		return ln.Addr().String()
	}
	aAddr, aMetrics, aHTTP, bAddr := addr(), addr(), addr(), addr()
	var mu sync.Mutex
	listen := func(_, a string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		ln, ok := lns[a]
		if !ok {
			return nil, fmt.Errorf("no listener made for %s", a)
		}
		delete(lns, a)
		return ln, nil
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	certs := makeCerts(t, "A", "B")
	cfg, err := config.Parse("deploy.toml", []byte(fmt.Sprintf(`
log_dir = ""
data_dir = %q
[peer]
retry_max = "50ms"
[peer.tls]
ca_file = %q
cert_file = %q
key_file = %q
[[server]]
name = "A"
addr = %q
metrics = %q
http = %q
neighbors = ["B"]
[[server]]
name = "B"
addr = %q
`, t.TempDir(), filepath.Join(certs, "ca.crt"), filepath.Join(certs, "{name}.crt"), filepath.Join(certs, "{name}.key"),
		aAddr, aMetrics, aHTTP, bAddr)))
	if err != nil {
		t.Fatal(err)
	}
	// A network provider's cache, as `herd serve` puts in front of the
	// google providers: it is what the places cache and upstream metrics count.
	newFinder := func(string) places.Finder {
		return cache.New(&fakeFinder{}, cache.Options{TTL: time.Minute, MaxEntries: 100, MaxBytes: 1 << 20, Burst: 10, UpstreamTimeout: 5 * time.Second})
	}
	start := func(name string) *Herd {
		h, err := Start(Options{Config: cfg, Names: []string{name}, NewFinder: newFinder, Listen: listen})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ha, hb := start("A"), start("B")
	t.Cleanup(func() { ha.Close(context.Background()) })
	bClosed := false
	t.Cleanup(func() {
		if !bClosed {
			hb.Close(context.Background())
		}
	})
	a := ha.Member("A")
	linkUp := func(want bool) func() bool {
		return func() bool {
			for _, l := range a.Peers.Links() {
				if l.Peer == "B" && l.Up == want {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, 10*time.Second, "A's link to B up", linkUp(true))
	ask(t, aAddr, "IAMAT deploy-a +34.068930-118.445127 1621464827.959498503")
	ask(t, bAddr, "IAMAT deploy-b +34.068930-118.445127 1621464827.959498503")
	c := dial(t, aAddr)
	c.send("WHATSAT deploy-a 10 5\n")
	c.whatsatReply()
	waitFor(t, 5*time.Second, "A to learn deploy-b", func() bool { return known(a, "deploy-b") != "" })
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + aHTTP + "/v1/clients/deploy-a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := hb.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	bClosed = true
	waitFor(t, 10*time.Second, "A's link to B down", linkUp(false))

	have := scrapedFamilies(get(t, "http://"+aMetrics+"/metrics"))
	check := func(file string, names []string) {
		for _, n := range names {
			if _, ok := have[n]; ok {
				continue
			}
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
			if base != n && have[base] == "histogram" {
				continue
			}
			t.Errorf("%s uses %s, which a running server does not export", file, n)
		}
	}
	check("deploy/grafana/herd.json", dash)
	check("deploy/prometheus/alerts.yml", rules)
}

// scrapedFamilies returns the metric families of a /metrics text with
// their types, from the "# TYPE name type" lines.
func scrapedFamilies(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

// dashboardNames returns the herd_… names in the dashboard's queries
// (every "expr") and in its template variables' queries.
func dashboardNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(e, k)
			}
		case []any:
			for _, e := range v {
				walk(e, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				exprs = append(exprs, v)
			}
		}
	}
	walk(d, "")
	if len(exprs) < 20 {
		t.Fatalf("%s: only %d queries", path, len(exprs))
	}
	return metricNames(exprs)
}

// ruleNames returns the herd_… names in the rules' expressions: each
// `expr:` value, on its line or the indented block below it.
func ruleNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		v, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		expr := v
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
			i++
			expr += "\n" + lines[i]
		}
		exprs = append(exprs, expr)
	}
	if len(exprs) < 6 {
		t.Fatalf("%s: only %d rules", path, len(exprs))
	}
	return metricNames(exprs)
}

func metricNames(exprs []string) []string {
	var out []string
	for _, e := range exprs {
		out = append(out, metricName.FindAllString(e, -1)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
