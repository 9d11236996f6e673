package e2e

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"herd/internal/config"
	"herd/internal/herd"
)

// TestStatusPageRealHerd drives the page of a real in-process herd: five
// servers shown, a killed server's link turns red, a new IAMAT appears.
func TestStatusPageRealHerd(t *testing.T) {
	ctx := browser(t)
	cfg := config.Default()
	for i := range cfg.Servers {
		cfg.Servers[i].Addr = "127.0.0.1:0"
		cfg.Servers[i].Metrics = "127.0.0.1:0"
	}
	cfg.LogDir = ""
	h, err := herd.Start(herd.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())

	url := "http://" + h.Member("Goloman").MetricsAddr + "/"
	nav, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(nav, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	waitFor(t, ctx, 10*time.Second, "five servers, all up",
		`document.querySelectorAll('#graph [data-server][data-state="up"]').length === 5`, linkStates)
	waitFor(t, ctx, 10*time.Second, "six links, all up",
		`document.querySelectorAll('#graph [data-link][data-state="up"]').length === 6`, linkStates)

	if err := h.Stop(context.Background(), "Welsh"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 10*time.Second, "the Holiday--Welsh link red",
		`document.querySelector('[data-link="Holiday--Welsh"]').dataset.state === "down"`, linkStates)

	nc, err := net.DialTimeout("tcp", h.Member("Goloman").ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte("IAMAT page.test.client +34.068930-118.445127 1621464827.959498503\n"))
	if reply, err := bufio.NewReader(nc).ReadString('\n'); err != nil || !strings.HasPrefix(reply, "AT Goloman ") {
		t.Fatalf("IAMAT reply %q, %v", reply, err)
	}
	waitFor(t, ctx, 10*time.Second, "the new IAMAT on the page",
		`[...document.querySelectorAll('#updates tbody tr')].some(r => r.dataset.updateClient === "page.test.client")`,
		`document.querySelector('#updates').innerText`)
}
