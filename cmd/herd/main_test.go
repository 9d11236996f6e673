package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = Main(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestHelpAndUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		"no args":         {nil, exitUsage, "", "Commands:"},
		"help":            {[]string{"help"}, exitOK, "Commands:", ""},
		"-h":              {[]string{"-h"}, exitOK, "Commands:", ""},
		"help up":         {[]string{"help", "up"}, exitOK, "Usage: herd up", ""},
		"up -h":           {[]string{"up", "-h"}, exitOK, "-config", ""},
		"serve -h":        {[]string{"serve", "-h"}, exitOK, "Usage: herd serve", ""},
		"client -h":       {[]string{"client", "-h"}, exitOK, "-addr", ""},
		"version -h":      {[]string{"version", "-h"}, exitOK, "Usage: herd version", ""},
		"version":         {[]string{"version"}, exitOK, ", peer protocol ", ""},
		"--version":       {[]string{"--version"}, exitOK, ", peer protocol ", ""},
		"unknown command": {[]string{"fly"}, exitUsage, "", `unknown command "fly"`},
		"bad flag":        {[]string{"up", "-nope"}, exitUsage, "", "flag provided but not defined"},
		"serve no name":   {[]string{"serve"}, exitUsage, "", "want exactly one server NAME"},
		"serve unknown":   {[]string{"serve", "Nobody"}, exitUsage, "", `no server named "Nobody"`},
		"missing config":  {[]string{"up", "-config", "/nonexistent.toml"}, exitUsage, "", "nonexistent.toml"},
		"client both":     {[]string{"client", "-addr", "x:1", "-server", "Hands"}, exitUsage, "", "not both"},
		"client refused":  {[]string{"client", "-addr", "127.0.0.1:1", "IAMAT a +1+1 1"}, exitFailure, "", "cannot connect to 127.0.0.1:1"},
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

func TestConfigErrorNamesFileAndKey(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(f, []byte("[[server]]\nname = \"A\"\naddr = \"127.0.0.1:1\"\nneighbors = [\"Ghost\"]\n"), 0o644)
	code, _, errs := runMain(t, "", "up", "-config", f)
	if code != exitUsage || !strings.Contains(errs, f) || !strings.Contains(errs, "server[0].neighbors") || !strings.Contains(errs, `"Ghost"`) {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
}

func TestBindErrorNamesTheAddressOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	f := filepath.Join(t.TempDir(), "h.toml")
	os.WriteFile(f, []byte("log_dir = \"\"\n[[server]]\nname = \"A\"\naddr = \""+addr+"\"\n"), 0o644)
	code, _, errs := runMain(t, "", "serve", "A", "-config", f)
	want := "herd serve: server A: listen on " + addr + ": bind: address already in use\n"
	if code != exitFailure || !strings.Contains(errs, want) || strings.Count(errs, addr) != 1 {
		t.Fatalf("code %d, stderr:\n%s\nwant the line %q", code, errs, want)
	}
}
