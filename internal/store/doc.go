// Package store keeps a server's location table on disk: an append-only log
// of changes, compacted from time to time into a snapshot, so that a server
// killed at any moment comes back with every update it acknowledged. It
// refuses to start on damaged state rather than drop any of it silently,
// and it fails closed: an append it cannot save is never reported saved.
//
// # Use
//
// Open recovers the state found in a directory and returns a Store ready to
// append to. The caller merges the recovered entries into its table (newest
// client time wins, so replaying an entry twice, or an old entry after a new
// one, is harmless), then, for every change to the table, calls Append under
// the same lock that orders its changes, after the change is visible in the
// table, and waits for the answer on the done channel before it
// acknowledges the change to a client: nil means saved, an error means not
// saved (yet). MarkPeer records how far the server has received a
// neighbour's changes. Snapshot writes the whole table and drops the log it
// covers; it runs by itself when Options.Compact is set (see
// Options.CompactBytes). State.Runs is the directory's run history, which
// the server announces to neighbours for catch-up.
//
// # Durability promise
//
// With SyncAlways (the default), when an append is answered nil, the entry,
// and every entry and peer mark appended before it, are on stable storage:
// the log file was synced (fdatasync on Linux, fsync elsewhere) after they
// were written, and the directory entry of that log file (and of the store
// directory, if Open created it) was fsynced when the file was created.
// They survive a process crash (kill -9), a kernel crash and a power cut,
// provided the disk honours fsync. Appends made while an fsync is running
// are written and fsynced together by the next one (group commit), so
// durability costs one fsync per batch, not one per append. Appends that
// nobody waits for (a nil done channel, while no Notify waits) are kept in
// memory and written with the next batch that someone waits for, or
// within Options.FastInterval (sooner past 64 KiB of them), and fsynced
// with it; a peer mark is written at once and fsynced the same way. A
// server's log holds its neighbours' changes, which it acknowledges to
// nobody, and they need not cost a write or a sync each on a disk the
// neighbours may share.
//
// With SyncFast, an append is answered once the entry has been written to
// the operating system (write(2) returned). Such an entry survives a crash
// of the process but not of the machine until the next fsync, which follows
// within Options.FastInterval (default 50ms) plus the duration of one fsync.
// In both modes Close writes and fsyncs everything appended before it.
//
// After Open, State holds every entry answered nil before the crash (under
// the promise above), except entries superseded in the caller's table at
// the time of a later Snapshot. Peer positions are never ahead of the
// entries recovered with them: a mark is written after the entries
// appended before it.
//
// # Failures: fail closed, resume by itself
//
// If a write or fsync of the log fails (a full disk, an I/O error), the
// store does not stop: it answers the appends of the failed batch, every
// waiting Notify, and every later append with the error at once, so that
// nothing unsaved is acknowledged; Health and Err return the error;
// Stats.Errors counts failures; the error is logged at most once a minute.
// Entries and peer marks appended meanwhile are kept in memory, in order.
// The writer retries with back-off (20ms doubling to 2s). Each attempt
// first truncates the newest segment back to its size at the last good
// fsync, so no partial record stays in the log and nothing whose fsync
// failed is trusted (after a failed fsync the kernel may have dropped the
// written pages), then writes again what followed, and fsyncs. Once that
// succeeds the store is healthy again, writes what was kept in memory and
// answers appends nil again. A crash while failing loses only what was
// never answered nil: peer records among it come back from the neighbours'
// catch-up, since the peer marks after them were not saved either.
// Snapshot is refused while the store fails.
//
// What is kept in memory is bounded by Options.MaxPending (64 MiB). Past
// it the store drops what it kept (the caller's table still holds every
// change) and the log lacks changes: once the disk works again the store
// calls Options.Compact and answers appends with an error until a
// snapshot begun after that point is durable; peer marks are held back
// meanwhile (they could claim changes the log lacks) and written after the
// snapshot.
//
// # Files
//
// A store directory holds:
//
//	LOCK                      held with flock(2) while a Store is open (Unix)
//	wal-NNNNNNNNNNNNNNNN.log  log segments, NNNN = segment number, 16 hex digits
//	snapshot.dat              the latest snapshot, if any
//	manifest                  which log segments must exist
//	runs                      the run history (text: "epoch first-seq" per line)
//	*.tmp                     a snapshot, manifest or runs file being written; deleted by Open
//	*.cut-<time>              what Repair cut, kept for inspection; ignored
//
// Every Open and every Snapshot starts a new segment; only the newest
// segment is ever written to. On Linux a new segment is preallocated
// (fallocate(2)) to 16 MiB once its header is durable, and extended by
// another 16 MiB before a write would pass its end, so that appending
// changes no block allocation and fdatasync, which flushes the data and
// only the metadata needed to read it back, suffices after each batch, as
// in etcd's WAL. The newest segment therefore ends in zeros while it is
// open; before a segment stops being the newest (a rotation) and when
// the store closes, the zeros are cut and the file fsynced. Reading the
// newest segment, zeros from a record boundary to the end of the file
// are its end, not damage; Open cuts them (durably) before starting the
// next segment. Zeros followed by anything else, or at the end of an
// older segment, are damage. A snapshot covers every segment numbered
// below the number recorded in its header; those are deleted once the
// snapshot is durable and the manifest says so. The manifest is written
// (temporary file, fsync, rename, directory fsync) after each new segment
// is durable and after each snapshot, so it names every segment that must
// be there; only the newest segment may be missing from it (a crash
// between creating that segment and updating the manifest). Open adds a
// run to the runs file, keeping the last 64.
//
// # Format
//
// All integers are little-endian. Segments, snapshots and the manifest
// start with a 48-byte header:
//
//	0   magic    8 bytes: "HERDWAL\x00" (log segment), "HERDSNP\x00" (snapshot), "HERDMAN\x00" (manifest)
//	8   version  uint32, 1
//	12  reserved uint32, 0
//	16  id       uint64, random non-zero id of the store directory
//	24  a        uint64, segment: its number; snapshot and manifest: first segment not covered
//	32  b        uint64, segment: 0; snapshot: highest seq appended when it began; manifest: last segment
//	40  crc      uint32, CRC-32C (Castagnoli) of bytes 0-39
//	44  reserved uint32, 0
//
// The manifest is the header alone. In segments and snapshots, records
// follow, back to back:
//
//	0  n     uint32, length of body, 1 to 16 MiB
//	4  crc   uint32, CRC-32C of the 4 bytes of n followed by body
//	8  body  n bytes: a type byte, then
//	         1 entry: uvarint seq, then the line (the rest of the body)
//	         2 peer:  uvarint epoch, uvarint seq, then the neighbour's name
//	         3 end:   uvarint entries, uvarint peers (snapshot only, last record)
//
// A snapshot holds every entry of the table, then the peer positions, then
// the end record.
//
// # Damage
//
// Open reads the snapshot and then the segments in order. Only one kind of
// damage is expected after a crash: a write cut short at the very end of
// the newest segment (no intact record follows the damaged one; the search
// for one goes byte by byte). Open cuts it, logs a warning with the file,
// the offset and the bytes dropped, and keeps every record before it. Any
// other damage makes Open fail with a *Damage naming the file and the byte
// offset, and Open changes nothing: a bad checksum or a bad length in the
// middle of the newest segment or anywhere in an older one, a bad segment
// header, a segment of another store, a segment missing from the range the
// snapshot and the manifest require (including all of them), a damaged,
// cut or older snapshot, a snapshot missing while the manifest says
// segments were compacted into one, a damaged manifest or runs file. Check
// reports what Open would find, without changing anything; Repair cuts the
// history at the first damage (everything recorded after it goes, peer
// marks included, so neighbours send it again), keeping a copy of every
// part it cuts as <file>.cut-<time>.
package store
