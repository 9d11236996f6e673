package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The manifest says which log segments must exist: every segment numbered
// from first to last. It is a bare 48-byte header (magic "HERDMAN\x00",
// a = first, b = last), replaced durably when a segment is created and when
// a snapshot takes over the segments below its first. It is written after
// the segment it names is durable, so after a crash at most one segment
// beyond last exists, never fewer than it names.
type manifest struct {
	id          uint64
	first, last uint64 // last < first: no segment is required
}

const (
	manifestName = "manifest"
	manifestTmp  = "manifest.tmp"
)

// readManifest reads dir's manifest; ok is false if there is none.
func readManifest(dir string) (m manifest, ok bool, err error) {
	path := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, false, nil
	}
	if err != nil {
		return manifest{}, false, fmt.Errorf("store: %w", err)
	}
	if len(b) != headerSize {
		return manifest{}, true, &Damage{File: path, Offset: int64(min(len(b), headerSize)),
			Reason: fmt.Sprintf("manifest is %d bytes, want %d", len(b), headerSize)}
	}
	h, err := decodeHeader(b, manMagic)
	if err != nil {
		return manifest{}, true, &Damage{File: path, Offset: 0, Reason: "manifest: " + err.Error()}
	}
	return manifest{id: h.id, first: h.a, last: h.b}, true, nil
}

// writeManifest replaces dir's manifest durably.
func writeManifest(dir string, m manifest) error {
	b := header{magic: manMagic, id: m.id, a: m.first, b: m.last}.encode()
	if err := writeFileDurable(filepath.Join(dir, manifestName), b); err != nil {
		return fmt.Errorf("store: write manifest: %w", err)
	}
	return nil
}

// writeFileDurable replaces path with data: write a temporary file, fsync,
// close, rename, fsync the directory.
func writeFileDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}
