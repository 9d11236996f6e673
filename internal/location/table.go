// Package location keeps the latest known location of every client and
// decides which of two reports of one client wins.
//
// The merge rule is the same on every server, so the herd converges:
//  1. the record with the later client time wins;
//  2. between records with equal client times, the one whose AT line is
//     greater (byte-wise) wins — except that an IAMAT received from a client
//     never replaces a stored record with an equal time (SPEC: "newer or
//     equal … nothing changes").
//
// Rule 2 lets two servers that received different IAMATs with the same
// client time agree on one of them without any coordination.
package location

import (
	"bytes"
	"hash/maphash"
	"sync"
	"unicode/utf8"

	"herd/internal/protocol"
)

// Record is a client's latest location: the AT line produced by the server
// that first received it, and the parsed fields needed to merge.
type Record struct {
	Line   string        // the AT line, no line ending; immutable
	Client string        // the client id; a substring of Line
	Time   protocol.Time // the client's time from Line
}

// NewRecord builds a record from an AT line, validating it. White space
// around the line (such as its line ending) is not kept.
func NewRecord(line []byte) (Record, error) {
	line = bytes.TrimFunc(line, func(r rune) bool { return r < utf8.RuneSelf && asciiSpace[r] })
	at, err := protocol.ParseAT(line)
	if err != nil {
		return Record{}, err
	}
	s := string(line)
	// Client aliases s: find it at the same offset it had in line.
	off := cap(line) - cap(at.Client)
	return Record{Line: s, Client: s[off : off+len(at.Client)], Time: at.Time}, nil
}

// Wins reports whether r should replace old under the merge rule, for a
// record that came from another server.
func (r Record) Wins(old Record) bool {
	switch r.Time.Compare(old.Time) {
	case 1:
		return true
	case 0:
		return r.Line > old.Line
	}
	return false
}

var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\v': true, '\f': true, '\r': true}

const shardCount = 64

// Table is the set of latest client records, safe for concurrent use.
type Table struct {
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]Record // guarded by mu; key is Record.Client
	_  [40]byte          // keep shards on separate cache lines
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]Record)
	}
	return t
}

func (t *Table) shard(client string) *shard {
	return &t.shards[maphash.String(t.seed, client)%shardCount]
}

// Get returns the stored record of client.
func (t *Table) Get(client string) (Record, bool) {
	s := t.shard(client)
	s.mu.RLock()
	r, ok := s.m[client]
	s.mu.RUnlock()
	return r, ok
}

// GetBytes is Get for a client id held in a byte slice; it does not allocate.
func (t *Table) GetBytes(client []byte) (Record, bool) {
	s := &t.shards[maphash.Bytes(t.seed, client)%shardCount]
	s.mu.RLock()
	r, ok := s.m[string(client)]
	s.mu.RUnlock()
	return r, ok
}

// ApplyLocal offers a record made from an IAMAT this server received. It is
// stored only if it is strictly newer than the stored one. ApplyLocal returns
// the record now stored and whether it changed.
func (t *Table) ApplyLocal(r Record) (Record, bool) {
	return t.apply(r, true)
}

// Apply offers a record that came from another server; it is stored if it
// wins under the merge rule. Apply returns the record now stored and whether
// it changed.
func (t *Table) Apply(r Record) (Record, bool) {
	return t.apply(r, false)
}

func (t *Table) apply(r Record, local bool) (Record, bool) {
	s := t.shard(r.Client)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[r.Client]; ok {
		if local && r.Time.Compare(old.Time) <= 0 || !local && !r.Wins(old) {
			return old, false
		}
	}
	s.m[r.Client] = r
	return r, true
}

// Len returns the number of clients known.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Range calls f for every record until f returns false. It copies one shard
// at a time and calls f without holding a lock, so f may block or call back
// into t; records changed during Range may or may not be seen.
func (t *Table) Range(f func(Record) bool) {
	var buf []Record
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		buf = buf[:0]
		for _, r := range s.m {
			buf = append(buf, r)
		}
		s.mu.RUnlock()
		for _, r := range buf {
			if !f(r) {
				return
			}
		}
	}
}
