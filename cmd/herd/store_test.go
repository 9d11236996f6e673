package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herd/internal/store"
)

// damagedDataDir makes data/A with two log segments of 50 entries and
// flips a byte in the middle of the older one. It returns the data_dir,
// the damaged file and the offset of the damaged record.
func damagedDataDir(t *testing.T) (dataDir, file string, off int64) {
	t.Helper()
	dataDir = t.TempDir()
	dir := filepath.Join(dataDir, "A")
	seq := uint64(0)
	for range 2 {
		s, _, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			seq++
			s.Append(seq, fmt.Sprintf("AT A +0.000000001 c%d +1+1 %d.5", seq, seq), nil)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := store.Check(dir)
	if err != nil || r.Damage != nil || len(r.Segments) != 2 {
		t.Fatalf("Check of a sound directory: %+v, %v", r, err)
	}
	file = filepath.Join(dir, r.Segments[0].Name)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = store.Check(dir)
	if err != nil || r.Damage == nil {
		t.Fatalf("Check of a damaged directory: %+v, %v", r, err)
	}
	return dataDir, file, r.Damage.Offset
}

func TestStoreCheckAndRepair(t *testing.T) {
	dataDir, file, off := damagedDataDir(t)
	dir := filepath.Join(dataDir, "A")
	where := fmt.Sprintf("%s is damaged at offset %d", file, off)

	code, out, errs := runMain(t, "", "store", "check", dir)
	if code != exitFailure || !strings.Contains(out, where) || !strings.Contains(out, "would cut at the damage and drop") {
		t.Fatalf("check: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	code, out, _ = runMain(t, "", "store", "repair", dir)
	if code != exitFailure || !strings.Contains(out, where) || !strings.Contains(out, "-yes") {
		t.Fatalf("repair without -yes: code %d\nstdout: %s", code, out)
	}
	if r, _ := store.Check(dir); r.Damage == nil {
		t.Fatal("repair without -yes changed the directory")
	}
	code, out, errs = runMain(t, "", "store", "repair", dir, "-yes")
	if code != exitOK || !strings.Contains(out, where) || !strings.Contains(out, "dropped ") || !strings.Contains(out, file+".cut-") {
		t.Fatalf("repair -yes: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	code, out, _ = runMain(t, "", "store", "check", dir)
	if code != exitOK || !strings.Contains(out, "clean") {
		t.Fatalf("check after repair: code %d\nstdout: %s", code, out)
	}
}

func TestStoreUsage(t *testing.T) {
	for _, args := range [][]string{{"store"}, {"store", "check"}, {"store", "fix", "x"}, {"store", "check", "-yes", "x"}} {
		if code, _, _ := runMain(t, "", args...); code != exitUsage {
			t.Errorf("%q: code %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, _ := runMain(t, "", "store", "check", filepath.Join(t.TempDir(), "none")); code != exitFailure {
		t.Errorf("check of a missing directory: code %d", code)
	}
}

// TestServeRefusesDamagedStore: `herd serve` exits 1 naming the file and
// the offset of the damage.
func TestServeRefusesDamagedStore(t *testing.T) {
	dataDir, file, off := damagedDataDir(t)
	cfg := filepath.Join(t.TempDir(), "herd.toml")
	conf := fmt.Sprintf("log_dir = \"\"\ndata_dir = %q\n[[server]]\nname = \"A\"\naddr = \"127.0.0.1:0\"\n", dataDir)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := Main(ctx, e, []string{"serve", "A", "-config", cfg})
	where := fmt.Sprintf("%s is damaged at offset %d", file, off)
	if code != exitFailure || !strings.Contains(stderr.String(), where) {
		t.Fatalf("serve: code %d, want %d and %q\nstderr: %s", code, exitFailure, where, stderr.String())
	}
}
