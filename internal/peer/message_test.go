package peer

import (
	"testing"
)

func TestParseMessage(t *testing.T) {
	tests := map[string]struct {
		line  string
		kind  int
		epoch uint64
		seq   uint64
		bad   bool
	}{
		"update":         {line: "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1621464827.959498503\n", kind: msgAT},
		"tombstone":      {line: "DEL Goloman kiwi 1621464827.959498503\n", kind: msgAT},
		"bad tombstone":  {line: "DEL Goloman kiwi\n", bad: true},
		"sync":           {line: "SYNC 42 7\n", kind: msgSync, epoch: 42, seq: 7},
		"synced":         {line: "SYNCED 42 9\r\n", kind: msgSynced, epoch: 42, seq: 9},
		"seq":            {line: "SEQ 10\n", kind: msgSeq, seq: 10},
		"ping":           {line: "PING\n", kind: msgPing},
		"duplicate":      {line: "DUPLICATE\n", kind: msgDuplicate},
		"future message": {line: "GOSSIP whatever\n", kind: msgOther},
		"bad update":     {line: "AT Goloman +0.263873386 kiwi +95-118 1\n", bad: true},
		"sync too short": {line: "SYNC 1\n", bad: true},
		"sync extra":     {line: "SYNC 1 2 3\n", bad: true},
		"sync negative":  {line: "SYNC -1 2\n", bad: true},
		"seq overflow":   {line: "SEQ 18446744073709551616\n", bad: true},
		"empty":          {line: "\n", bad: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := parseMessage([]byte(tt.line))
			if tt.bad {
				if err == nil {
					t.Fatalf("parsed %q as %+v", tt.line, m)
				}
				return
			}
			if err != nil || m.kind != tt.kind || m.epoch != tt.epoch || m.seq != tt.seq {
				t.Fatalf("got %+v, %v", m, err)
			}
		})
	}
}

// FuzzParseMessage checks that no line from a neighbour crashes the
// decoder, and that an accepted update is a valid record.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		"AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n",
		"SYNC 1 2\n", "SYNCED 3 4\n", "SEQ 5\n", "PING\n", "DUPLICATE\n", "HERD-PEER 1 A B 00\n", "\n", "AT\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseMessage(line)
		if err != nil {
			return
		}
		if m.kind == msgAT && (len(m.line) == 0 || len(m.client) == 0) {
			t.Fatalf("accepted update without a record: %q", line)
		}
	})
}
