package protocol

// The one size limit of a record. Every update a server accepts from a
// client becomes an AT line that its neighbours must accept too, so the
// longest client line is derived from the longest AT line a peer link
// carries, never the other way round.
const (
	// MaxRecordBytes is the longest AT line, without its line ending, that
	// a peer link carries. A peer reader must hold a line of this length
	// plus its own framing.
	MaxRecordBytes = 64 << 10

	// MaxServerName is the longest server name (see ValidServerName).
	MaxServerName = 64

	// MaxDiffBytes is the longest time difference of an AT line: a sign,
	// the 19 digits of the largest int64, a dot and nine digits.
	MaxDiffBytes = 1 + 19 + 1 + 9

	// ATOverhead bounds how many bytes an AT line has beyond the client
	// line it was made from: the AT line replaces "IAMAT" and its separator
	// with "AT <server> <diff> ". (Runs of white space between fields only
	// shrink, so this is an upper bound.)
	ATOverhead = len("AT ") + MaxServerName + len(" ") + MaxDiffBytes + len(" ")

	// MaxClientLineBytes is the largest client.max_line_bytes (a client
	// line, its line ending included): the AT line made from any IAMAT
	// that fits it is at most MaxRecordBytes long.
	MaxClientLineBytes = MaxRecordBytes - ATOverhead

	// MinClientLineBytes is the smallest client.max_line_bytes.
	MinClientLineBytes = 64
)
