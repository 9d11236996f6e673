package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRedis is a line server answering inline GEOADD commands of one
// member as Redis does: ":1" for a new member, ":0" for one already in the
// set, an error reply for anything else.
type fakeRedis struct {
	mu      sync.Mutex
	members map[string]string // member → "lng lat"; guarded by mu
	calls   int               // GEOADDs answered; guarded by mu
	still   int               // GEOADDs that did not move their member; guarded by mu
}

func startFakeRedis(t *testing.T) (*fakeRedis, string) {
	t.Helper()
	r := &fakeRedis{members: map[string]string{}}
	return r, fakeServer(t, r.answer)
}

func (r *fakeRedis) answer(line string) string {
	f := strings.Fields(strings.TrimSuffix(line, "\r"))
	if len(f) != 5 || !strings.EqualFold(f[0], "GEOADD") || f[1] != "herd" {
		return "-ERR unknown command or wrong number of arguments\r\n"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	old, known := r.members[f[4]]
	if old == f[2]+" "+f[3] {
		r.still++
	}
	r.members[f[4]] = f[2] + " " + f[3]
	if known {
		return ":0\r\n"
	}
	return ":1\r\n"
}

func (r *fakeRedis) counts() (members, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members), r.calls
}

func TestRedisWorkload(t *testing.T) {
	for _, o := range []Options{
		{Mode: Keepalive, Conns: 4, Requests: 400, Clients: 20},
		{Mode: Keepalive, Pipeline: 8, Conns: 2, Requests: 400, Clients: 20},
		{Mode: Oneshot, Conns: 2, Requests: 60, Clients: 20},
	} {
		t.Run(fmt.Sprintf("%s pipeline %d", o.Mode, o.Pipeline), func(t *testing.T) {
			fr, addr := startFakeRedis(t)
			o.Workload, o.Targets, o.Duration, o.Timeout = Redis, []string{addr}, 20*time.Second, 10*time.Second
			res := mustRun(t, o)
			if res.OK != o.Requests {
				t.Errorf("ok %d, want %d", res.OK, o.Requests)
			}
			members, calls := fr.counts()
			// Workers share the request budget, so one may take most of it.
			if int64(calls) != o.Requests || members == 0 || members > o.Clients {
				t.Errorf("the server saw %d GEOADDs of %d members, want %d of at most %d", calls, members, o.Requests, o.Clients)
			}
			fr.mu.Lock()
			defer fr.mu.Unlock()
			if fr.still != 0 {
				t.Errorf("%d GEOADDs did not move their member", fr.still)
			}
			for m, pos := range fr.members {
				if !slices.Contains(redisLngLat, pos) || !strings.HasPrefix(m, "bench-") {
					t.Errorf("member %q at %q", m, pos)
				}
			}
		})
	}
}

func TestRedisWorkloadCountsWrongReplies(t *testing.T) {
	addr := fakeServer(t, func(string) string { return "+OK\r\n" })
	res, err := Run(context.Background(), Options{Workload: Redis, Targets: []string{addr}, Conns: 2, Requests: 20,
		Duration: 20 * time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.ErrorKinds[KindWrongReply] != 20 {
		t.Errorf("ok %d, kinds %v, want 20 wrong replies", res.OK, res.ErrorKinds)
	}
}

func TestBenchRedisWithWarmupAndReference(t *testing.T) {
	fr, addr := startFakeRedis(t)
	o := Options{Workload: Redis, Targets: []string{addr}, Conns: 2, Clients: 10, Requests: 100,
		Warmup: 50 * time.Millisecond, Duration: 20 * time.Second, Timeout: 10 * time.Second}
	rep, err := Bench(context.Background(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Herd.OK != 100 || rep.Herd.Errors != 0 || rep.Reference == nil || rep.Reference.OK != 100 || rep.Ratio == nil {
		t.Fatalf("herd %+v, reference %+v", rep.Herd, rep.Reference)
	}
	// The probe, the warm-up and the 100 measured GEOADDs.
	if _, calls := fr.counts(); calls <= 101 {
		t.Errorf("the server saw %d GEOADDs: no warm-up before the measured 100", calls)
	}
	if rep.WarmupS != 0.05 || !strings.Contains(rep.Describe(), "after 0.05s of warm-up") {
		t.Errorf("report says %q (warmup %v)", rep.Describe(), rep.WarmupS)
	}
}

func TestBenchRedisProbeRefusesAHerd(t *testing.T) {
	herdLike := fakeServer(t, func(line string) string { return "? " + line + "\n" })
	if _, err := Bench(context.Background(), Options{Workload: Redis, Targets: []string{herdLike}, Requests: 1, Timeout: 5 * time.Second}, false); err == nil ||
		!strings.Contains(err.Error(), "like Redis") {
		t.Errorf("got %v, want the probe to say the target does not answer like Redis", err)
	}
}

func TestCheckGEOADDReply(t *testing.T) {
	for reply, ok := range map[string]bool{
		":1\r\n": true, ":0\r\n": true,
		":2\r\n": false, ":1\n": false, "+OK\r\n": false, "-ERR x\r\n": false, "": false, ":1\r\n:1\r\n": false,
	} {
		if err := CheckGEOADDReply([]byte(reply)); (err == nil) != ok {
			t.Errorf("%q: got %v, want ok=%v", reply, err, ok)
		}
	}
}

func TestValidateWarmup(t *testing.T) {
	o := Options{Targets: []string{"x:1"}, Warmup: -time.Second}
	if err := o.Validate(); err == nil {
		t.Error("a negative warm-up passed")
	}
	o = Options{Targets: []string{"x:1"}, Workload: Redis, Warmup: time.Second}
	if err := o.Validate(); err != nil {
		t.Errorf("redis with a warm-up: %v", err)
	}
}

func TestRedisLngLat(t *testing.T) {
	if redisLngLat[0] != "-118.445127 34.068930" || len(redisLngLat) != len(locations) {
		t.Errorf("redisLngLat = %q", redisLngLat)
	}
}

// Every worker owns a multiple of the locations' count of clients here:
// the location still changes between two GEOADDs of one member.
func TestRedisEveryGEOADDMoves(t *testing.T) {
	fr, addr := startFakeRedis(t)
	mustRun(t, Options{Workload: Redis, Targets: []string{addr}, Conns: 2, Clients: 2 * len(locations), Requests: 200,
		Duration: 20 * time.Second, Timeout: 10 * time.Second})
	_, calls := fr.counts()
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if calls != 200 || fr.still != 0 {
		t.Errorf("%d GEOADDs, %d of them not moving their member", calls, fr.still)
	}
}
