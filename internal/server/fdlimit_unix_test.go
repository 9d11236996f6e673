//go:build unix

package server

import (
	"syscall"
	"testing"
)

// TestFDLimitRaised: fdLimit leaves the soft limit at the hard one and
// reports it.
func TestFDLimitRaised(t *testing.T) {
	got := fdLimit()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip(err)
	}
	if got != uint64(rl.Cur) || got == 0 {
		t.Fatalf("fdLimit() = %d, soft limit %d", got, rl.Cur)
	}
	if rl.Cur != rl.Max {
		t.Logf("soft limit %d below hard %d (the system refused to raise it)", rl.Cur, rl.Max)
	}
}
