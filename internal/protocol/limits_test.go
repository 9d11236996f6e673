package protocol

import (
	"strings"
	"testing"
	"time"
)

// longestIAMAT returns an IAMAT line of exactly n bytes, its line ending
// included, with the longest client id and time the parser accepts; the
// location's fraction fills the rest.
func longestIAMAT(t *testing.T, n int) string {
	t.Helper()
	id := strings.Repeat("k", MaxClientID)
	tm := "9223372036854775807.999999999"
	head := "IAMAT " + id + " +1."
	tail := "+1 " + tm + "\n"
	fill := n - len(head) - len(tail)
	if fill < 1 {
		t.Fatalf("no room for a location in %d bytes", n)
	}
	return head + strings.Repeat("5", fill) + tail
}

// TestATFitsRecordLimit: the AT line made from the longest client line a
// server may accept, by a server with the longest name, at any time, fits
// MaxRecordBytes.
func TestATFitsRecordLimit(t *testing.T) {
	line := longestIAMAT(t, MaxClientLineBytes)
	if len(line) != MaxClientLineBytes {
		t.Fatalf("line is %d bytes, want %d", len(line), MaxClientLineBytes)
	}
	cmd, err := Parse([]byte(line[:len(line)-1]))
	if err != nil {
		t.Fatal(err)
	}
	server := strings.Repeat("S", MaxServerName)
	for name, recv := range map[string]time.Time{
		"now":   time.Now(),
		"epoch": time.Unix(0, 0),
		"far":   time.Unix(1<<62, 999999999),
	} {
		at := AppendAT(nil, server, recv, &cmd)
		if len(at) > MaxRecordBytes {
			t.Errorf("%s: AT line of %d bytes exceeds MaxRecordBytes %d", name, len(at), MaxRecordBytes)
		}
		if _, _, err := CheckAT(at); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if MaxClientLineBytes < 4096 || MaxClientLineBytes < 60<<10 {
		t.Errorf("MaxClientLineBytes %d is below the default or a generous max_line_bytes", MaxClientLineBytes)
	}
}
