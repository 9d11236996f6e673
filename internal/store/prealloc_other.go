//go:build !linux

package store

import (
	"errors"
	"os"
)

// preallocate is not done on this system: segments grow with each write.
func preallocate(*os.File, int64) error { return errors.ErrUnsupported }

// fdatasync is fsync on this system.
func fdatasync(f *os.File) error { return f.Sync() }
