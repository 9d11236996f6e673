// Package store keeps a server's location table on disk: an append-only log
// of changes, compacted from time to time into a snapshot, so that a server
// killed at any moment comes back with every update it acknowledged.
//
// # Use
//
// Open recovers the state found in a directory and returns a Store ready to
// append to. The caller merges the recovered entries into its table (newest
// client time wins, so replaying an entry twice, or an old entry after a new
// one, is harmless), then, for every change to the table, calls Append under
// the same lock that orders its changes, after the change is visible in the
// table, and waits for the done channel before it acknowledges the change to
// a client. MarkPeer records how far the server has received a neighbour's
// changes. Snapshot writes the whole table and drops the log it covers; it
// runs by itself when Options.Compact is set (see Options.CompactBytes).
//
// # Durability promise
//
// With SyncAlways (the default), when the done channel given to Append is
// closed and Err then returns nil, the entry, and every entry and peer mark
// appended before it, are on stable storage: the log file was fsynced after
// they were written, and the directory entry of that log file (and of the
// store directory, if Open created it) was fsynced when the file was created. They survive a process crash (kill -9), a
// kernel crash and a power cut, provided the disk honours fsync. Appends
// made while an fsync is running are written and fsynced together by the
// next one (group commit), so durability costs one fsync per batch, not one
// per append.
//
// With SyncFast, done is closed once the entry has been written to the
// operating system (write(2) returned). Such an entry survives a crash of
// the process but not of the machine until the next fsync, which follows
// within Options.FastInterval (default 50ms) plus the duration of one fsync.
// In both modes Close writes and fsyncs everything appended before it.
//
// After Open, State holds every entry whose done channel was closed before
// the crash (under the promise above), except entries superseded in the
// caller's table at the time of a later Snapshot. Peer positions are never
// ahead of the entries recovered with them: a mark is written after the
// entries appended before it, and marks found after a damaged part of the
// log are ignored.
//
// If a write or fsync fails, the store stops: Err returns the error, every
// pending and later done channel is closed at once, and nothing more is
// written. The log is then reopened with Open, which discards any partly
// written tail. After Close, Err returns ErrClosed.
//
// # Files
//
// A store directory holds:
//
//	LOCK                      held with flock(2) while a Store is open (Unix)
//	wal-NNNNNNNNNNNNNNNN.log  log segments, NNNN = segment number, 16 hex digits
//	snapshot.dat              the latest snapshot, if any
//	snapshot.tmp              a snapshot being written; deleted by Open
//
// Every Open and every Snapshot starts a new segment; only the newest
// segment is ever written to. A snapshot covers every segment numbered
// below the number recorded in its header; those are deleted once the
// snapshot is durable.
//
// # Format
//
// All integers are little-endian. Both kinds of file start with a 48-byte
// header:
//
//	0   magic    8 bytes: "HERDWAL\x00" (log segment) or "HERDSNP\x00" (snapshot)
//	8   version  uint32, 1
//	12  reserved uint32, 0
//	16  epoch    uint64, random non-zero id of the store's history
//	24  a        uint64, segment: its number; snapshot: first segment not covered
//	32  b        uint64, segment: 0; snapshot: highest seq appended when it began
//	40  crc      uint32, CRC-32C (Castagnoli) of bytes 0-39
//	44  reserved uint32, 0
//
// Records follow, back to back:
//
//	0  n     uint32, length of body, 1 to 16 MiB
//	4  crc   uint32, CRC-32C of the 4 bytes of n followed by body
//	8  body  n bytes: a type byte, then
//	         1 entry: uvarint seq, then the line (the rest of the body)
//	         2 peer:  uvarint epoch, uvarint seq, then the neighbour's name
//	         3 end:   uvarint entries, uvarint peers (snapshot only, last record)
//
// A snapshot holds every entry of the table, then the peer positions, then
// the end record; anything missing or damaged in it makes Open fail with an
// error naming the file, since no data may be dropped silently.
//
// # Damage in the log
//
// Open reads the segments in order and stops reading a segment at the first
// record that is cut short or fails its checksum. In the newest segment this
// is the tail of a write interrupted by a crash: Open logs a warning with the
// file, the offset and the number of bytes dropped, truncates the file there
// and keeps every record before it. In an older segment, which was complete
// and fsynced before the next was created, it is damage to stored data: Open
// logs an error, keeps the records before it and those of later segments,
// leaves the file as it is for inspection (the next Snapshot deletes it),
// and ignores every peer mark after that point, so that neighbours resend
// what may have been lost.
package store
