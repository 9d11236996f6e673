package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"herd/internal/config"
	"herd/internal/herd"
	"herd/internal/places"
)

// SpawnOptions say how to start a herd in-process.
type SpawnOptions struct {
	// Config is the herd to start. It is copied; in the copy every client
	// and peer listener moves to a free 127.0.0.1 port (so a herd already
	// running on the configured ports is not disturbed) and metrics
	// listeners are dropped.
	Config *config.Config
	// NewFinder returns each server's places provider; nil gives every
	// server one shared FixedFinder.
	NewFinder func(server string) places.Finder
	// LogDir is where the servers log (<LogDir>/<name>.log); empty: no log
	// files.
	LogDir string
	// DataDir is where the servers keep durable state (<DataDir>/<name>/);
	// empty: memory only. The config's data_dir is never used, so a spawned
	// herd cannot touch the state of a real one.
	DataDir string
	// Secret authenticates the peer links unless the config has
	// [peer.tls]; nil: a random one, as a production herd would have.
	Secret []byte
	// Progress receives the herd's human-readable events; nil discards them.
	Progress *slog.Logger
}

// Spawned is a herd started by Spawn.
type Spawned struct {
	h   *herd.Herd
	cfg *config.Config
}

// Spawn starts every server of o.Config in this process, with
// herd/internal/herd, the same assembly `herd up` uses.
func Spawn(o SpawnOptions) (*Spawned, error) {
	cfg := *o.Config
	cfg.Servers = make([]config.Server, len(o.Config.Servers))
	for i, s := range o.Config.Servers {
		s.Neighbors = append([]string(nil), s.Neighbors...)
		if s.SeparatePeerListener() {
			s.PeerAddr = "127.0.0.1:0"
		} else {
			s.PeerAddr = ""
		}
		s.Addr = "127.0.0.1:0"
		s.Metrics = ""
		cfg.Servers[i] = s
	}
	cfg.LogDir, cfg.DataDir = o.LogDir, o.DataDir
	newFinder := o.NewFinder
	if newFinder == nil {
		f := NewFixedFinder()
		newFinder = func(string) places.Finder { return f }
	}
	secret := o.Secret
	if secret == nil {
		var b [24]byte
		rand.Read(b[:])
		secret = []byte(hex.EncodeToString(b[:]))
	}
	h, err := herd.Start(herd.Options{
		Config: &cfg, NewFinder: newFinder, Secrets: [][]byte{secret}, Progress: o.Progress,
		NoLogFiles: o.LogDir == "",
	})
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	return &Spawned{h: h, cfg: &cfg}, nil
}

// Config returns the configuration the herd runs with (listeners on port 0).
func (s *Spawned) Config() *config.Config { return s.cfg }

// Addr returns the client address of the server called name.
func (s *Spawned) Addr(name string) (string, bool) {
	m := s.h.Member(name)
	if m == nil {
		return "", false
	}
	return m.ClientAddr, true
}

// MaxConns returns the fewest client connections any server of the herd
// accepts at once (client.max_conns, lowered to fit the process's
// open-file limit, which the servers and the load share).
func (s *Spawned) MaxConns() int {
	least := 0
	for _, m := range s.h.Members() {
		if n := m.Server.MaxConns(); least == 0 || n < least {
			least = n
		}
	}
	return least
}

// WaitLinks waits until every peer link of the herd is up, polling every
// few milliseconds until ctx is done.
func (s *Spawned) WaitLinks(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		down := ""
		for _, m := range s.h.Members() {
			for _, l := range m.Peers.Links() {
				if !l.Up {
					down = m.Name + "–" + l.Peer
				}
			}
		}
		if down == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("spawn: peer link %s is not up: %w", down, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops the herd, letting connections finish until ctx is done.
func (s *Spawned) Close(ctx context.Context) error { return s.h.Close(ctx) }

// FarthestPair returns two servers of cfg whose shortest path over the
// links is the longest of the herd (its diameter), the first in config
// order, and that path's length in hops. Propagation between them is the
// slowest the herd has. A herd of one server gives that server twice and 0;
// servers that cannot reach each other are ignored.
func FarthestPair(cfg *config.Config) (from, to string, hops int) {
	names := cfg.Names()
	if len(names) == 0 {
		return "", "", 0
	}
	from, to = names[0], names[0]
	links := map[string][]string{}
	for _, n := range names {
		links[n] = cfg.Links(n)
	}
	for _, a := range names {
		dist := map[string]int{a: 0}
		queue := []string{a}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range links[n] {
				if _, seen := dist[m]; !seen {
					dist[m] = dist[n] + 1
					queue = append(queue, m)
				}
			}
		}
		for _, b := range names {
			if d, ok := dist[b]; ok && d > hops {
				from, to, hops = a, b, d
			}
		}
	}
	return from, to, hops
}
