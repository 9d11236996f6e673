//go:build linux

package store

import (
	"os"
	"syscall"
)

// preallocate gives f disk blocks up to size bytes (fallocate(2), mode 0:
// the file's size becomes size, the new bytes read as zeros), so that
// later writes inside it change no block allocation and an fdatasync of
// them writes the data alone.
func preallocate(f *os.File, size int64) error {
	return control(f, "fallocate", func(fd int) error { return syscall.Fallocate(fd, 0, 0, size) })
}

// fdatasync makes the data written to f durable, and of its metadata only
// what reading the data back needs (its size, block allocation): the
// modification time is left to a later writeback.
func fdatasync(f *os.File) error {
	return control(f, "fdatasync", syscall.Fdatasync)
}

// control runs call on f's descriptor, again after EINTR.
func control(f *os.File, op string, call func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if cerr = call(int(fd)); cerr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if cerr != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: cerr}
	}
	return nil
}
