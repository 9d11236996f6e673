package httpapi

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"herd/internal/config"
	"herd/internal/geo"
	"herd/internal/live"
	"herd/internal/location"
	"herd/internal/protocol"
	"herd/internal/server"
)

// liveEnv is a server whose table feeds an index and a change log, as a
// herd member's does, behind an API on a listener with short timeouts.
type liveEnv struct {
	srv *server.Server
	ts  *httptest.Server
}

func newLiveEnv(t *testing.T, heartbeat time.Duration) *liveEnv {
	t.Helper()
	table := location.NewTable()
	idx := geo.New()
	lg := live.NewLog(1024, 7, 0)
	table.OnChange(func(r location.Record, from string) {
		e := &live.Event{Record: r, From: from, Time: time.Now()}
		if r.Deleted() {
			e.Kind = live.Deleted
			e.Prev, e.HadPrev = idx.Remove(r.Client)
		} else {
			at, _ := protocol.ParseAT([]byte(r.Line))
			e.Kind, e.Point = live.Location, geo.Point{Lat: at.Lat, Lon: at.Lng}
			e.Prev, e.HadPrev = idx.Set(r.Client, e.Point)
		}
		lg.Append(e)
	})
	srv := server.New(server.Options{
		Name: "Goloman", Client: config.Default().Client, PlacesTimeout: time.Second, Table: table,
		Finder: fakeFinder{}, Logger: slog.New(slog.DiscardHandler),
	})
	api := New(Options{Backend: srv, Tokens: testTokens(), Index: idx, Live: lg, Heartbeat: heartbeat})
	ts := httptest.NewUnstartedServer(api)
	// Timeouts far shorter than the test: a stream must outlive them.
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 150*time.Millisecond, 150*time.Millisecond
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		srv.Shutdown(context.Background())
	})
	return &liveEnv{srv: srv, ts: ts}
}

func (e *liveEnv) report(t *testing.T, line string) {
	t.Helper()
	cmd, err := protocol.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.srv.Report(context.Background(), &cmd, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestStreamOutlivesTimeoutsWithHeartbeats: a stream stays open past the
// listener's read and write timeouts, gets heartbeat comments while idle,
// and shows only the clients its token may read.
func TestStreamOutlivesTimeoutsWithHeartbeats(t *testing.T) {
	e := newLiveEnv(t, 40*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+bobToken)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(10 * time.Second)
	beats := 0
	start := time.Now()
	for beats < 3 || time.Since(start) < 500*time.Millisecond {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended after %v (the listener's timeouts are 150ms)", time.Since(start))
			}
			if l == ": heartbeat" {
				beats++
			}
		case <-deadline:
			t.Fatal("no heartbeats")
		}
	}
	e.report(t, "IAMAT carol/phone +1+1 1") // bob may not read carol
	e.report(t, "IAMAT alice/phone +1+1 1")
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "carol") {
				t.Fatalf("bob's stream shows carol: %q", l)
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"client":"alice/phone"`) {
				return
			}
		case <-deadline:
			t.Fatal("no event for alice/phone")
		}
	}
}

// TestDeleteTokens: deleting needs write on the id; an unknown client is 404.
func TestDeleteTokens(t *testing.T) {
	e := newLiveEnv(t, time.Hour)
	e.report(t, "IAMAT alice/phone +1+1 1")
	do := func(tok, id string) int {
		req, _ := http.NewRequest("DELETE", e.ts.URL+"/v1/clients/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := do(bobToken, "alice%2Fphone"); c != 403 {
		t.Fatalf("bob deleting alice: %d", c)
	}
	if c := do(readerToken, "alice%2Fphone"); c != 403 {
		t.Fatalf("a reader deleting: %d", c)
	}
	if c := do(aliceToken, "alice%2Ftablet"); c != 404 {
		t.Fatalf("deleting an unknown client: %d", c)
	}
	if c := do(aliceToken, "alice%2Fphone"); c != 200 {
		t.Fatalf("alice deleting her phone: %d", c)
	}
	if c := do(aliceToken, "alice%2Fphone"); c != 404 {
		t.Fatalf("deleting twice: %d", c)
	}
	cmd, _ := protocol.Parse([]byte("IAMAT alice/phone +1+1 1"))
	if _, _, err := e.srv.Report(context.Background(), &cmd, time.Now()); err == nil {
		t.Fatal("an IAMAT older than the deletion was stored")
	}
}

// TestReportOlderThanDeletionIs409: a report timed before the client's
// deletion is refused with 409.
func TestReportOlderThanDeletionIs409(t *testing.T) {
	e := newLiveEnv(t, time.Hour)
	e.report(t, "IAMAT alice/phone +1+1 1")
	if _, err := e.srv.Delete(context.Background(), "alice/phone"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/locations", strings.NewReader(`{"client":"alice/phone","lat":1,"lon":1,"time":"2"}`))
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("%d, want 409", res.StatusCode)
	}
}
