// Package pki makes the certificates of a herd and builds the tls.Configs
// that peer links and client listeners use.
//
// Issuance, for `herd certs`: a CA made once (LoadOrCreateCA) and a key
// and certificate per server (CA.IssueServer).
// Keys are never overwritten: an existing key is reused and a fresh
// certificate issued for it, which is how a certificate is rotated.
//
// Peer links use Peer: mutual TLS 1.3 against a CA pool, with the server
// name carried as a DNS SAN. Client listeners use KeyPair (server
// certificate only) and `herd client -tls` uses DialConfig. Peer and
// KeyPair re-read their files when they change, at most once a second, so
// certificates and CAs are rotated without a restart.
package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Expand returns path with every "{name}" replaced by name, as the
// cert_file and key_file settings allow ("certs/{name}.crt").
func Expand(path, name string) string {
	return strings.ReplaceAll(path, "{name}", name)
}

// reloadInterval is how often a reloader looks at its files at most.
const reloadInterval = time.Second

// stamp identifies one version of a file.
type stamp struct {
	info os.FileInfo // nil when the file could not be stat'ed
}

func (s stamp) same(o stamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

func stampFiles(paths []string) []stamp {
	st := make([]stamp, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			st[i] = stamp{fi}
		}
	}
	return st
}

// reloader holds the last good result of load over a set of files and
// loads again when one of them changes.
type reloader[T any] struct {
	paths []string                       // immutable
	load  func(now time.Time) (T, error) // immutable
	now   func() time.Time               // immutable after construction; tests replace it

	mu      sync.Mutex // guards the fields below
	cur     T          // last good load
	stamps  []stamp    // the files as they were at the last good load
	checked time.Time  // when the files were last stat'ed
	err     error      // the error of the last failed reload; nil after a good one
}

// newReloader loads once and fails if that load fails.
func newReloader[T any](paths []string, load func(time.Time) (T, error), now func() time.Time) (*reloader[T], error) {
	r := &reloader[T]{paths: paths, load: load, now: now}
	st := stampFiles(paths)
	t := now()
	v, err := load(t)
	if err != nil {
		return nil, err
	}
	r.cur, r.stamps, r.checked = v, st, t
	return r, nil
}

// get returns the current value, reloading first when at least
// reloadInterval has passed since the last look and a file changed.
func (r *reloader[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	if t.Sub(r.checked) >= reloadInterval {
		r.checked = t
		r.reloadLocked(t)
	}
	return r.cur
}

// reload looks at the files now, whatever the interval, and returns the
// error of a failed load (the last good load is kept).
func (r *reloader[T]) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	r.checked = t
	r.reloadLocked(t)
	return r.err
}

func (r *reloader[T]) reloadLocked(t time.Time) {
	st := stampFiles(r.paths)
	changed := false
	for i := range st {
		if !st[i].same(r.stamps[i]) {
			changed = true
		}
	}
	if !changed {
		return
	}
	v, err := r.load(t)
	if err != nil {
		// Stamps stay as they were so the next look tries again: a
		// certificate and its key are often replaced one after the other.
		r.err = err
		return
	}
	r.cur, r.stamps, r.err = v, st, nil
}

func (r *reloader[T]) lastErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// readPEM reads file and returns its PEM blocks; role names the setting
// ("ca_file", "cert_file", "key_file") in errors.
func readPEM(role, file string) ([]*pem.Block, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: missing", role, file)
		}
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	var blocks []*pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s %s: not PEM", role, file)
	}
	return blocks, nil
}

// readCerts reads every CERTIFICATE block of file.
func readCerts(role, file string) ([]*x509.Certificate, error) {
	blocks, err := readPEM(role, file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d: %w", role, file, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s %s: not PEM: no CERTIFICATE block", role, file)
	}
	return certs, nil
}

// writeFile writes data to path durably: a temporary file in the same
// directory, synced, closed, then moved into place and the directory
// synced. With exclusive, an existing path is never replaced (the move is
// a hard link, which fails if path exists).
func writeFile(path string, data []byte, mode os.FileMode, exclusive bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if exclusive {
			err = linkNew(tmp, path)
		} else {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// linkNew moves tmp to path unless path exists. A hard link makes that
// atomic; on file systems without hard links it falls back to a check and
// a rename.
func linkNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, os.ErrExist) {
		return err
	}
	if ok, serr := exists(path); serr != nil {
		return serr
	} else if ok {
		return fmt.Errorf("%s already exists", path)
	}
	return os.Rename(tmp, path)
}
