package herd

import (
	"context"
	"fmt"
	"slices"
	"time"

	"herd/internal/config"
	"herd/internal/peer"
	"herd/internal/places"
)

// ReloadOptions is what a reload takes besides the new config.
type ReloadOptions struct {
	// NewFinder, if set, gives each server its places provider from now
	// on (the new config's [places]); nil keeps the providers.
	NewFinder func(server string) places.Finder
	// HasSecret says whether the process has a peer secret, for the
	// protected-mode check of the new config.
	HasSecret bool
}

// Reload applies cfg, a new version of the running herd's config, without
// dropping clients (SIGHUP): links added and removed, servers added and
// removed when this process runs the whole herd (herd up), a neighbour's
// new address, client limits for new connections, [locations] limits, the
// places provider, the log level, the HTTP tokens; log files are reopened. A member whose own
// listening addresses changed is restarted on the new ones. Settings read
// only at start (data_dir, data_sync, TLS files' places, secrets, tokens of
// the status pages, max_conns) keep their old values until a restart, and
// each is named in the returned notes, one line per change. An error means
// cfg was refused and nothing changed.
func (h *Herd) Reload(cfg *config.Config, o ReloadOptions) ([]string, error) {
	h.reload.Lock()
	defer h.reload.Unlock()
	h.mu.Lock()
	old := h.cfg
	wanted := h.localNamesLocked(cfg)
	h.mu.Unlock()
	for _, n := range wanted {
		if _, ok := cfg.Server(n); !ok {
			return nil, fmt.Errorf("%s: this process runs %s, which the new config does not have (servers are %v)", cfg.Source(), n, cfg.Names())
		}
	}
	if err := cfg.Unprotected(wanted, o.HasSecret); err != nil {
		return nil, err
	}
	notes := restartOnly(old, cfg)
	var restart, add, remove []string
	for _, n := range wanted {
		if s, ok := old.Server(n); !ok {
			add = append(add, n)
		} else if ns, _ := cfg.Server(n); listenersChanged(s, ns) {
			restart = append(restart, n)
		}
	}
	for _, m := range h.Members() {
		if !slices.Contains(wanted, m.Name) {
			remove = append(remove, m.Name)
		}
	}
	// Bind what is new first: a port in use refuses the reload whole.
	var bounds []bound
	for _, n := range add {
		s, _ := cfg.Server(n)
		b, err := h.bind(s)
		if err != nil {
			for _, b := range bounds {
				b.close()
			}
			return nil, err
		}
		bounds = append(bounds, b)
	}
	h.mu.Lock()
	h.cfg = cfg
	h.local = map[string]bool{}
	for _, n := range wanted {
		h.local[n] = true
	}
	// Servers elsewhere are dialed where the new config says; servers here
	// where they are bound (bind recorded it), unless they advertise.
	for _, s := range cfg.Servers {
		if !h.local[s.Name] || s.Advertise != "" {
			h.addrs[s.Name] = s.PeerAddrOf()
		}
		if !h.local[s.Name] {
			h.metricsAddrs[s.Name] = s.Metrics
		}
	}
	if o.NewFinder != nil {
		h.o.NewFinder = o.NewFinder
	}
	h.mu.Unlock()
	h.o.Level.Set(cfg.Level())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range remove {
		if err := h.Stop(ctx, n); err != nil {
			notes = append(notes, fmt.Sprintf("stopping %s: %v", n, err))
		}
		notes = append(notes, "stopped server "+n+": it is not in the config any more")
	}
	for _, n := range restart {
		m := h.Member(n)
		if m == nil {
			continue
		}
		if err := h.Stop(ctx, n); err != nil {
			notes = append(notes, fmt.Sprintf("stopping %s: %v", n, err))
		}
		s, _ := cfg.Server(n)
		b, err := h.bind(s)
		if err == nil {
			var nm *Member
			if nm, err = h.startMember(b); err == nil {
				h.mu.Lock()
				h.members[n] = nm
				h.mu.Unlock()
			} else {
				b.close()
			}
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("server %s is down: restarting it on its new addresses failed: %v", n, err))
			continue
		}
		notes = append(notes, "restarted server "+n+" on its new addresses (its clients were disconnected)")
	}
	for _, b := range bounds {
		m, err := h.startMember(b)
		if err != nil {
			b.close()
			notes = append(notes, fmt.Sprintf("server %s could not start: %v", b.s.Name, err))
			continue
		}
		h.mu.Lock()
		h.members[m.Name] = m
		h.mu.Unlock()
		notes = append(notes, "started server "+m.Name)
	}
	for _, m := range h.Members() {
		notes = append(notes, m.apply(cfg, o.NewFinder)...)
	}
	if err := h.ReloadTokens(); err != nil {
		notes = append(notes, fmt.Sprintf("http tokens: %v (the old tokens stay)", err))
	}
	return notes, nil
}

// localNamesLocked returns the servers this process runs under cfg: the
// ones it was started with (herd serve), or every server of cfg (herd up).
func (h *Herd) localNamesLocked(cfg *config.Config) []string {
	if len(h.o.Names) > 0 {
		return h.o.Names
	}
	return cfg.Names()
}

// neighbors returns the links of the member called name under the current
// config, with where to dial each.
func (h *Herd) neighbors(name string) []peer.Neighbor {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []peer.Neighbor
	for _, n := range h.cfg.Links(name) {
		out = append(out, peer.Neighbor{Name: n, Addr: h.addrs[n]})
	}
	return out
}

// apply gives a running member what a reload changes in place, and says
// what changed.
func (m *Member) apply(cfg *config.Config, newFinder func(string) places.Finder) []string {
	var notes []string
	added, removed := m.Peers.SetNeighbors(m.h.neighbors(m.Name))
	for _, n := range added {
		notes = append(notes, fmt.Sprintf("%s: link to %s added", m.Name, n))
	}
	for _, n := range removed {
		notes = append(notes, fmt.Sprintf("%s: link to %s removed", m.Name, n))
	}
	m.Server.SetClient(cfg.Client)
	m.Table.SetLimits(tableLimits(cfg.Locations))
	if newFinder != nil {
		if f := newFinder(m.Name); f != nil {
			m.Server.SetFinder(f)
		}
	}
	if m.log != nil {
		m.log.Reopen()
	}
	return notes
}

// listenersChanged reports whether a server's own listening addresses
// differ between two configs.
func listenersChanged(a, b config.Server) bool {
	return a.Addr != b.Addr || a.PeerAddr != b.PeerAddr || a.Metrics != b.Metrics || a.HTTP != b.HTTP
}

// restartOnly names the settings that changed between old and cfg but
// apply only at start.
func restartOnly(old, cfg *config.Config) []string {
	var notes []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"data_dir", old.DataDir != cfg.DataDir},
		{"data_sync", old.DataSync != cfg.DataSync},
		{"log_dir", old.LogDir != cfg.LogDir},
		{"peer_secret_file", old.PeerSecretFile != cfg.PeerSecretFile},
		{"insecure", old.Insecure != cfg.Insecure},
		{"peer.tls", old.Peer.TLS != cfg.Peer.TLS},
		{"peer (timers, queue_size)", old.Peer.QueueSize != cfg.Peer.QueueSize || old.Peer.Heartbeat != cfg.Peer.Heartbeat || old.Peer.DeadAfter != cfg.Peer.DeadAfter || old.Peer.RetryMax != cfg.Peer.RetryMax || old.Peer.DialTimeout != cfg.Peer.DialTimeout || old.Peer.WriteTimeout != cfg.Peer.WriteTimeout},
		{"client.tls", old.Client.TLS != cfg.Client.TLS},
		{"client.max_conns", old.Client.MaxConns != cfg.Client.MaxConns},
		{"client.max_conns_per_ip", old.Client.MaxConnsPerIP != cfg.Client.MaxConnsPerIP},
		{"metrics.token_file", old.Metrics != cfg.Metrics},
		{"http", old.HTTP != cfg.HTTP},
	} {
		if c.changed {
			notes = append(notes, c.key+" changed: it takes effect when the servers restart")
		}
	}
	return notes
}
