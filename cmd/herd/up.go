package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"herd/internal/config"
	"herd/internal/herd"
	"herd/internal/peer"
)

func peerVersion() string { return peer.Version }

func runUp(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "up", "", "Run every server of the herd in this process, each on its own address,\ntalking to the others over TCP. Without -config: ./herd.toml if present,\nelse the built-in five-server herd (Goloman, Hands, Holiday, Welsh, Wilkes).")
	cfgPath := fs.String("config", "", "config file (TOML)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return runHerd(ctx, e, cfg, nil)
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
		return usagef("no server named %q in %s (servers are %s)", name, describe(cfg), strings.Join(cfg.Names(), ", "))
	}
	return runHerd(ctx, e, cfg, []string{name})
}

func describe(cfg *config.Config) string {
	if cfg.File == "" {
		return "the built-in config"
	}
	return cfg.File
}

// runHerd runs the named servers (all when names is empty) until ctx is
// cancelled by SIGINT or SIGTERM.
func runHerd(ctx context.Context, e *env, cfg *config.Config, names []string) error {
	progress := newProgressLogger(e.stderr)
	secret, err := loadSecret(cfg, e.getenv)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		progress.Warn("no peer secret (peer_secret_file or HERD_PEER_SECRET): peer links are not authenticated")
	}
	newFinder, err := finderFactory(ctx, cfg.Places, e.getenv, progress)
	if err != nil {
		return err
	}
	h, err := herd.Start(herd.Options{Config: cfg, Names: names, NewFinder: newFinder, Secret: secret, Progress: progress})
	if err != nil {
		return err
	}
	where := "logs are not written (log_dir is empty)"
	if cfg.LogDir != "" {
		where = "logs in " + cfg.LogDir + "/<name>.log"
	}
	progress.Info(fmt.Sprintf("herd of %d server(s) from %s is up; %s; Ctrl-C stops", len(h.Members()), describe(cfg), where))
	<-ctx.Done()
	progress.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(sctx); err != nil {
		return err
	}
	progress.Info("stopped")
	return nil
}

// loadSecret returns the peer secret: HERD_PEER_SECRET if set, else the
// contents of peer_secret_file (surrounding white space trimmed).
func loadSecret(cfg *config.Config, getenv func(string) string) ([]byte, error) {
	if s := strings.TrimSpace(getenv("HERD_PEER_SECRET")); s != "" {
		return []byte(s), nil
	}
	if cfg.PeerSecretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.PeerSecretFile)
	if err != nil {
		return nil, usagef("%s: peer_secret_file: %v", describe(cfg), err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return nil, usagef("%s: peer_secret_file: the secret in %s is shorter than 16 characters", describe(cfg), cfg.PeerSecretFile)
	}
	return []byte(s), nil
}
