package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"herd/internal/config"
	"herd/internal/pki"
)

const certsAbout = `Make the certificates for mutual TLS between servers ([peer.tls]).

The CA (ca.crt, ca.key) is made once in DIR and reused afterwards. Then each
server of the config gets a key NAME.key (ECDSA P-256, mode 0600) and a
certificate NAME.crt signed by the CA, carrying the server's name and the
hosts of its addresses. An existing key is never overwritten: it is kept and a
fresh certificate is issued for it, so running herd certs again renews every
certificate, and running servers pick the new ones up within a second.

With -server NAME only that server is done; NAME may be a server that is not
in the config yet (one being added to the herd). Copy ca.crt, NAME.crt and
NAME.key to the machine that runs NAME; ca.key stays where it is.`

func runCerts(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "certs", "", certsAbout)
	cfgPath := fs.String("config", "", "config file (TOML); default ./herd.toml if present, else the built-in herd")
	dir := fs.String("dir", "certs", "directory for the CA, keys and certificates")
	only := fs.String("server", "", "issue for this server only (it may be a new server, not yet in the config)")
	if err := parseFlagsOnly(e, fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	names := cfg.Names()
	if *only != "" {
		if strings.ContainsAny(*only, `/\`) || *only == "." || *only == ".." {
			return usagef("-server %q: a server name cannot be a path", *only)
		}
		if _, ok := cfg.Server(*only); !ok {
			fmt.Fprintf(e.stdout, "%s is not in %s: issuing for a new server, its certificate carries only its name\n", *only, cfg.Source())
		}
		names = []string{*only}
	}

	ca, res, err := pki.LoadOrCreateCA(*dir)
	if err != nil {
		return err
	}
	printResults(e, res)
	for _, name := range names {
		res, err := ca.IssueServer(*dir, name, certHosts(cfg, name))
		if err != nil {
			return err
		}
		printResults(e, res)
	}

	slash := filepath.ToSlash(filepath.Clean(*dir))
	fmt.Fprintf(e.stdout, "\nAdd to the config of every server:\n\n")
	fmt.Fprintf(e.stdout, "[peer.tls]\n")
	fmt.Fprintf(e.stdout, "ca_file   = %q\n", path.Join(slash, pki.CACertFile))
	fmt.Fprintf(e.stdout, "cert_file = %q\n", path.Join(slash, "{name}.crt"))
	fmt.Fprintf(e.stdout, "key_file  = %q\n", path.Join(slash, "{name}.key"))
	return nil
}

func printResults(e *env, res []pki.FileResult) {
	for _, r := range res {
		switch {
		case r.Written:
			fmt.Fprintf(e.stdout, "wrote %s\n", r.Path)
		case strings.HasSuffix(r.Path, ".key"):
			fmt.Fprintf(e.stdout, "kept  %s (existing key reused)\n", r.Path)
		default:
			fmt.Fprintf(e.stdout, "kept  %s\n", r.Path)
		}
	}
}

// certHosts returns the hosts of name's client and peer addresses, for
// its certificate's SANs. A host that is the name of another server is
// left out: a certificate carrying it could pose as that server.
func certHosts(cfg *config.Config, name string) []string {
	s, ok := cfg.Server(name)
	if !ok {
		return nil
	}
	others := cfg.Names()
	var hosts []string
	for _, addr := range []string{s.Addr, s.PeerAddr} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" || host == name || slices.Contains(others, host) || slices.Contains(hosts, host) {
			continue
		}
		hosts = append(hosts, host)
	}
	return hosts
}

func runSecret(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "secret", "", "Print a new random peer secret: 32 bytes from crypto/rand as 64 hex characters.\nSave it to a file of mode 0600 named by peer_secret_file, or pass it in\nHERD_PEER_SECRET, on every server.")
	if err := parseFlagsOnly(e, fs, args); err != nil {
		return err
	}
	b := make([]byte, 32)
	rand.Read(b) // never fails; crashes the program if the system has no randomness
	_, err := fmt.Fprintln(e.stdout, hex.EncodeToString(b))
	return err
}
