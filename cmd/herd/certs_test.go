package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"herd/internal/config"
	"herd/internal/pki"
)

var builtinNames = []string{"Goloman", "Hands", "Holiday", "Welsh", "Wilkes"}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertsWritesThenKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errs := runMain(t, "", "certs", "-dir", dir)
	if code != exitOK {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	want := []string{"wrote " + filepath.Join(dir, "ca.key"), "wrote " + filepath.Join(dir, "ca.crt")}
	for _, n := range builtinNames {
		want = append(want, "wrote "+filepath.Join(dir, n+".key"), "wrote "+filepath.Join(dir, n+".crt"))
	}
	slashDir := filepath.ToSlash(dir)
	want = append(want, "[peer.tls]",
		`ca_file   = "`+slashDir+`/ca.crt"`,
		`cert_file = "`+slashDir+`/{name}.crt"`,
		`key_file  = "`+slashDir+`/{name}.key"`)
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	keys := map[string][]byte{}
	for _, f := range append(slices.Clone(builtinNames), "ca") {
		p := filepath.Join(dir, f+".key")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
		keys[p], _ = os.ReadFile(p)
	}
	caCert, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	oldCert, _ := os.ReadFile(filepath.Join(dir, "Hands.crt"))

	code, out, errs = runMain(t, "", "certs", "-dir", dir)
	if code != exitOK {
		t.Fatalf("second run: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, w := range []string{
		"kept  " + filepath.Join(dir, "ca.key") + " (existing key reused)",
		"kept  " + filepath.Join(dir, "ca.crt"),
		"kept  " + filepath.Join(dir, "Hands.key") + " (existing key reused)",
		"wrote " + filepath.Join(dir, "Hands.crt"),
	} {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("second run: stdout lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "wrote "+filepath.Join(dir, "ca")) || strings.Contains(out, ".key\n") {
		t.Errorf("second run wrote a key or the CA:\n%s", out)
	}
	for p, k := range keys {
		if now, _ := os.ReadFile(p); !bytes.Equal(now, k) {
			t.Errorf("%s changed on the second run", p)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); !bytes.Equal(now, caCert) {
		t.Error("ca.crt changed on the second run")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "Hands.crt")); bytes.Equal(now, oldCert) {
		t.Error("Hands.crt was not renewed")
	}

	// What was written is what a server loads.
	for _, n := range builtinNames {
		p, err := pki.NewPeer(filepath.Join(dir, "ca.crt"), filepath.Join(dir, n+".crt"), filepath.Join(dir, n+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CheckName(n); err != nil {
			t.Error(err)
		}
	}
	c := readCertFile(t, filepath.Join(dir, "Goloman.crt"))
	if len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("Goloman.crt IP SANs %v, want the host of its address", c.IPAddresses)
	}
}

func TestCertsNewServer(t *testing.T) {
	dir := t.TempDir()
	if code, out, errs := runMain(t, "", "certs", "-dir", dir, "-server", "Hands"); code != exitOK {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	code, out, errs := runMain(t, "", "certs", "-dir", dir, "-server", "Newcomer")
	if code != exitOK {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, w := range []string{"Newcomer is not in the built-in config", "kept  " + filepath.Join(dir, "ca.key"), "wrote " + filepath.Join(dir, "Newcomer.key"), "wrote " + filepath.Join(dir, "Newcomer.crt")} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if got, want := strings.Join(files, " "), "Hands.crt Hands.key Newcomer.crt Newcomer.key ca.crt ca.key"; got != want {
		t.Errorf("files %s, want %s", got, want)
	}
	c := readCertFile(t, filepath.Join(dir, "Newcomer.crt"))
	if !slices.Equal(c.DNSNames, []string{"Newcomer"}) || len(c.IPAddresses) != 0 {
		t.Errorf("Newcomer.crt SANs %v %v, want only its name", c.DNSNames, c.IPAddresses)
	}
}

func TestCertsUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		"help":           {[]string{"help", "certs"}, exitOK, "may be a new server", ""},
		"extra args":     {[]string{"certs", "-dir", t.TempDir(), "Hands"}, exitUsage, "", "unexpected arguments: Hands"},
		"path as name":   {[]string{"certs", "-dir", t.TempDir(), "-server", "../x"}, exitUsage, "", "cannot be a path"},
		"bad config":     {[]string{"certs", "-dir", t.TempDir(), "-config", "/nonexistent.toml"}, exitUsage, "", "nonexistent.toml"},
		"CA without key": {[]string{"certs", "-dir", caWithoutKey(t)}, exitFailure, "", "exists without"},
		"secret help":    {[]string{"help", "secret"}, exitOK, "64 hex characters", ""},
		"secret args":    {[]string{"secret", "x"}, exitUsage, "", "unexpected arguments"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runMain(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.inStdout) || !strings.Contains(errs, tt.inStderr) {
				t.Fatalf("code %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
		})
	}
}

// caWithoutKey returns a directory holding a CA certificate whose key is gone.
func caWithoutKey(t *testing.T) string {
	dir := t.TempDir()
	if _, _, err := pki.LoadOrCreateCA(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "ca.key"))
	return dir
}

func TestCertHostsLeaveOutOtherServersNames(t *testing.T) {
	cfg := &config.Config{Servers: []config.Server{
		{Name: "alpha", Addr: "alpha:12000"},
		{Name: "beta", Addr: "alpha:12001", PeerAddr: "10.0.0.2:13001"},
		{Name: "gamma", Addr: "0.0.0.0:12002", PeerAddr: "gamma.example:1"},
	}}
	tests := map[string][]string{
		"alpha":    nil,
		"beta":     {"10.0.0.2"},
		"gamma":    {"0.0.0.0", "gamma.example"},
		"newcomer": nil,
	}
	for name, want := range tests {
		if got := certHosts(cfg, name); !slices.Equal(got, want) {
			t.Errorf("certHosts(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestSecret(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}\n$`)
	seen := map[string]bool{}
	for range 3 {
		code, out, errs := runMain(t, "", "secret")
		if code != exitOK || !hex64.MatchString(out) {
			t.Fatalf("code %d, stdout %q, stderr %q", code, out, errs)
		}
		if seen[out] {
			t.Fatalf("secret %q printed twice", out)
		}
		seen[out] = true
	}
}
