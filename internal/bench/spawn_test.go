package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/places"
)

func spawnDefault(t *testing.T) (*Spawned, *FixedFinder) {
	t.Helper()
	f := NewFixedFinder()
	cfg := config.Default()
	cfg.Peer.RetryMax = config.Duration{D: 50 * time.Millisecond}
	sp, err := Spawn(SpawnOptions{Config: cfg, NewFinder: func(string) places.Finder { return f }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sp.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.WaitLinks(ctx); err != nil {
		t.Fatal(err)
	}
	return sp, f
}

func addrOf(t *testing.T, sp *Spawned, name string) string {
	t.Helper()
	a, ok := sp.Addr(name)
	if !ok {
		t.Fatalf("no server %s", name)
	}
	return a
}

func TestSpawnedHerd(t *testing.T) {
	sp, finder := spawnDefault(t)
	if sp.Config().Servers[0].Addr != "127.0.0.1:0" || sp.Config().LogDir != "" {
		t.Errorf("spawned config %+v keeps configured ports or logs", sp.Config().Servers[0])
	}
	goloman, welsh := addrOf(t, sp, "Goloman"), addrOf(t, sp, "Welsh")
	for _, o := range []Options{
		{Workload: IAMAT, Mode: Keepalive, Conns: 4, Requests: 400},
		{Workload: IAMAT, Mode: Keepalive, Pipeline: 8, Conns: 2, Requests: 400},
		{Workload: IAMAT, Mode: Oneshot, Conns: 4, Requests: 100},
		{Workload: WHATSAT, Mode: Keepalive, Conns: 2, Requests: 50, Clients: 4},
	} {
		t.Run(string(o.Workload)+"/"+string(o.Mode), func(t *testing.T) {
			o.Targets = []string{goloman, welsh}
			o.Duration, o.Timeout = 30*time.Second, 10*time.Second
			res := mustRun(t, o)
			if res.OK != o.Requests {
				t.Errorf("ok %d, want %d", res.OK, o.Requests)
			}
		})
	}
	if finder.Calls() == 0 {
		t.Error("the WHATSATs never reached the places finder")
	}
}

func TestSpawnedPropagation(t *testing.T) {
	sp, _ := spawnDefault(t)
	from, to, hops := FarthestPair(sp.Config())
	if from != "Hands" || to != "Welsh" || hops != 3 {
		t.Errorf("farthest pair %s–%s (%d hops), want Hands–Welsh (3)", from, to, hops)
	}
	// The warm-up's samples must not make the measured ones wrong.
	o := Options{Workload: Propagation, From: addrOf(t, sp, from), To: addrOf(t, sp, to), Requests: 30, Duration: 30 * time.Second, Timeout: 10 * time.Second, Warmup: 300 * time.Millisecond}
	rep, err := Bench(context.Background(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []*Result{rep.Herd, rep.Reference} {
		if res.OK != 30 || res.Errors != 0 {
			t.Errorf("%s: ok %d, errors %d %v", res.Label, res.OK, res.Errors, res.ErrorSamples)
		}
		if res.PollsPerSample < 1 {
			t.Errorf("%s: %v polls per sample", res.Label, res.PollsPerSample)
		}
	}
	if rep.Ratio == nil || rep.Ratio.P50 <= 0 {
		t.Errorf("ratio %+v", rep.Ratio)
	}
}

func TestFarthestPair(t *testing.T) {
	cfg := &config.Config{Servers: []config.Server{
		{Name: "Hill", Neighbors: []string{"Jaquez", "Smith"}},
		{Name: "Jaquez"},
		{Name: "Smith", Neighbors: []string{"Campbell"}},
		{Name: "Campbell"},
		{Name: "Singleton", Neighbors: []string{"Jaquez", "Smith", "Campbell"}},
	}}
	from, to, hops := FarthestPair(cfg)
	if from != "Hill" || to != "Campbell" || hops != 2 {
		t.Errorf("got %s–%s (%d hops), want Hill–Campbell (2), the first in config order", from, to, hops)
	}
	one := &config.Config{Servers: []config.Server{{Name: "Alone"}}}
	if from, to, hops := FarthestPair(one); from != "Alone" || to != "Alone" || hops != 0 {
		t.Errorf("one server: %s–%s %d", from, to, hops)
	}
}

func TestFakePlaces(t *testing.T) {
	fp, err := StartFakePlaces()
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fp.URL + "?location=34.068930,-118.445127&radius=10000&key=x")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Status  string            `json:"status"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Status != "OK" || len(doc.Results) != 20 {
		t.Errorf("status %q, %d results, error %v", doc.Status, len(doc.Results), err)
	}
	if fp.Requests() != 1 {
		t.Errorf("%d requests counted, want 1", fp.Requests())
	}
	c.CloseIdleConnections()
}
