//go:build !unix

package store

import "os"

// lockDir does nothing where flock(2) is not available.
func lockDir(dir string) (*os.File, error) { return nil, nil }

// unlockDir does nothing where flock(2) is not available.
func unlockDir(f *os.File) {}
