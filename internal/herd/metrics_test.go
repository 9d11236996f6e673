package herd

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	g := h.Member("Goloman")
	ask(t, g.ClientAddr, "IAMAT m +1+1 1")
	ask(t, g.ClientAddr, "IAMAT m +1+1 1")
	ask(t, g.ClientAddr, "bogus")
	c := dial(t, g.ClientAddr)
	c.send("WHATSAT m 1 1\n")
	c.whatsatReply()
	waitFor(t, 5*time.Second, "Hands to learn m", func() bool { return known(h.Member("Hands"), "m") != "" })
	if got := get(t, "http://"+g.MetricsAddr+"/healthz"); got != "ok\n" {
		t.Fatalf("healthz %q", got)
	}
	text := get(t, "http://"+g.MetricsAddr+"/metrics")
	for _, want := range []string{
		`herd_commands_total{command="IAMAT",outcome="ok",server="Goloman"} 1`,
		`herd_commands_total{command="IAMAT",outcome="stale",server="Goloman"} 1`,
		`herd_commands_total{command="invalid",outcome="invalid",server="Goloman"} 1`,
		`herd_commands_total{command="WHATSAT",outcome="ok",server="Goloman"} 1`,
		`herd_peer_link_up{peer="Hands",server="Goloman"} 1`,
		`herd_clients_known{server="Goloman"} 1`,
		`herd_reply_duration_seconds_count{command="IAMAT",server="Goloman"} 2`,
		`herd_places_lookups_total{result="ok",server="Goloman"} 1`,
		`herd_client_connections_total{server="Goloman"} `, // peers that share the client port count too
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Goloman's copy may arrive after Wilkes' one, which told Hands first.
	var hands string
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(hands, `herd_flood_received_total{peer="Goloman",server="Hands"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("Hands did not count the update flooded from Goloman:\n%s", grep(hands, "herd_flood"))
		}
		hands = get(t, "http://"+h.Member("Hands").MetricsAddr+"/metrics")
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestStatusAPI(t *testing.T) {
	h := startHerd(t, defaultConfig(t), nil)
	ask(t, h.Member("Hands").ClientAddr, "IAMAT status-client +1+1 1")
	welsh := h.Member("Welsh")
	waitFor(t, 5*time.Second, "Welsh to learn it", func() bool { return known(welsh, "status-client") != "" })
	body := get(t, "http://"+welsh.MetricsAddr+"/api/state")
	for _, want := range []string{`"server":"Welsh"`, `"clients":1`, `"client":"status-client"`, `"from":"Holiday"`, `"peer":"Holiday","up":true`, `"name":"Goloman"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/api/state lacks %s:\n%s", want, body)
		}
	}
	if page := get(t, "http://"+welsh.MetricsAddr+"/"); !strings.Contains(page, "<svg") && !strings.Contains(page, "<html") {
		t.Errorf("status page: %.200s", page)
	}
}
