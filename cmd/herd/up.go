package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"herd/internal/config"
	"herd/internal/herd"
	"herd/internal/peer"
)

func peerVersion() string { return peer.Version }

func runUp(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "up", "", "Run every server of the herd in this process, each on its own address,\ntalking to the others over TCP. Without -config: ./herd.toml if present,\nelse the built-in five-server herd (Goloman, Hands, Holiday, Welsh, Wilkes).")
	cfgPath := fs.String("config", "", "config file (TOML)")
	if err := parseFlagsOnly(e, fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return runHerd(ctx, e, cfg, nil)
}

// ownSecret is the peer secret `herd up` makes at start when the config has
// no credential: every member runs in this process, so no other process
// can join its herd.
func ownSecret() [][]byte {
	b := make([]byte, 32)
	rand.Read(b)
	return [][]byte{[]byte(hex.EncodeToString(b))}
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve", "NAME", "Run the server NAME of the herd; its neighbours run elsewhere.")
	cfgPath := fs.String("config", "", "config file (TOML)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	// Allow the name before or after the flags.
	rest := fs.Args()
	if len(rest) > 0 && len(args) > 0 && args[0] == rest[0] {
		if err := parseFlags(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		}
	} else if len(rest) != 1 {
		return usagef("want exactly one server NAME, got %d arguments", len(rest))
	}
	name := rest[0]
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if _, ok := cfg.Server(name); !ok {
		return usagef("no server named %q in %s (servers are %s)", name, cfg.Source(), strings.Join(cfg.Names(), ", "))
	}
	return runHerd(ctx, e, cfg, []string{name})
}

// runHerd runs the named servers (all when names is empty) until ctx is
// cancelled by SIGINT or SIGTERM.
func runHerd(ctx context.Context, e *env, cfg *config.Config, names []string) error {
	level := new(slog.LevelVar)
	level.Set(cfg.Level())
	progress := newProgressLogger(e.stderr, level)
	secrets, err := loadSecrets(cfg, e.getenv)
	if err != nil {
		return err
	}
	if len(names) == 0 && len(secrets) == 0 && !cfg.Peer.TLS.On() && !cfg.Insecure {
		secrets = ownSecret()
	}
	if err := cfg.Unprotected(names, len(secrets) > 0); err != nil {
		return usageError{err}
	}
	token, err := loadToken(cfg)
	if err != nil {
		return err
	}
	newFinder := finderFactory(cfg.Places, e.getenv, progress)
	h, err := herd.Start(herd.Options{Config: cfg, Names: names, NewFinder: newFinder, Secrets: secrets, MetricsToken: token, Progress: progress, Level: level})
	if err != nil {
		return err
	}
	where := "logs are not written (log_dir is empty)"
	if cfg.LogDir != "" {
		where = "logs in " + cfg.LogDir + "/<name>.log"
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	progress.Info(fmt.Sprintf("herd of %d server(s) from %s is up; %s; Ctrl-C stops, SIGHUP reloads the config", len(h.Members()), cfg.Source(), where))
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			cfg = reload(e, h, cfg, len(secrets) > 0, progress)
		}
	}
	progress.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(sctx); err != nil {
		return err
	}
	progress.Info("stopped")
	return nil
}

// reload re-reads the config file of a running herd and applies it
// (SIGHUP); a config with an error is refused and cur stays. It returns
// the config now in force.
func reload(e *env, h *herd.Herd, cur *config.Config, hasSecret bool, progress *slog.Logger) *config.Config {
	if cur.File == "" {
		progress.Warn("reload: the herd runs the built-in config, there is no file to read again")
		return cur
	}
	cfg, err := config.Load(cur.File)
	if err != nil {
		progress.Error("reload refused, the running config stays", "err", err.Error())
		return cur
	}
	o := herd.ReloadOptions{HasSecret: hasSecret}
	if cfg.Places != cur.Places {
		o.NewFinder = finderFactory(cfg.Places, e.getenv, progress)
	}
	notes, err := h.Reload(cfg, o)
	if err != nil {
		progress.Error("reload refused, the running config stays", "err", err.Error())
		return cur
	}
	for _, n := range notes {
		progress.Info("reload: " + n)
	}
	progress.Info("reloaded " + cfg.File)
	return cfg
}

// loadSecrets returns the peer secrets: HERD_PEER_SECRET if set, else the
// lines of peer_secret_file (blank lines and surrounding white space left
// out). The first proves this server; every one is accepted from a
// neighbour, so a secret can be rotated without downtime.
func loadSecrets(cfg *config.Config, getenv func(string) string) ([][]byte, error) {
	if s := strings.TrimSpace(getenv("HERD_PEER_SECRET")); s != "" {
		if len(s) < peer.MinSecretBytes {
			return nil, usagef("HERD_PEER_SECRET is %d bytes: a peer secret needs at least %d (`herd secret` prints a good one)", len(s), peer.MinSecretBytes)
		}
		return [][]byte{[]byte(s)}, nil
	}
	if cfg.PeerSecretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.PeerSecretFile)
	if err != nil {
		return nil, usagef("%s: peer_secret_file: %v", cfg.Source(), err)
	}
	var out [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) < peer.MinSecretBytes {
			return nil, usagef("%s: peer_secret_file: line %d of %s is %d bytes: a peer secret needs at least %d (`herd secret` prints a good one)", cfg.Source(), i+1, cfg.PeerSecretFile, len(line), peer.MinSecretBytes)
		}
		out = append(out, []byte(line))
	}
	if len(out) == 0 {
		return nil, usagef("%s: peer_secret_file: %s holds no secret", cfg.Source(), cfg.PeerSecretFile)
	}
	return out, nil
}

// loadToken returns the status page token of [metrics] token_file, or "".
func loadToken(cfg *config.Config) (string, error) {
	f := cfg.Metrics.TokenFile
	if f == "" {
		return "", nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return "", usagef("%s: metrics.token_file: %v", cfg.Source(), err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < peer.MinSecretBytes {
		return "", usagef("%s: metrics.token_file: the token in %s is %d bytes: it needs at least %d", cfg.Source(), f, len(tok), peer.MinSecretBytes)
	}
	return tok, nil
}
