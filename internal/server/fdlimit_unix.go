//go:build unix

package server

import "syscall"

// fdLimit raises the soft limit on open files to the hard one (as the Go
// runtime already does at start on most systems) and returns the soft
// limit now in force; 0 if it cannot be read.
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		}
	}
	return uint64(rl.Cur)
}
