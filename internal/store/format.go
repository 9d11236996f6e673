package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	walMagic   = "HERDWAL\x00"
	snapMagic  = "HERDSNP\x00"
	manMagic   = "HERDMAN\x00"
	version    = 1
	headerSize = 48
	recHdrSize = 8

	// maxBody is the largest record body accepted; larger lengths are
	// treated as damage.
	maxBody = 16 << 20

	recEntry = 1
	recPeer  = 2
	recEnd   = 3
)

// MaxLine is the longest line Append accepts.
const MaxLine = maxBody - 1 - binary.MaxVarintLen64

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the fixed header of a log segment, a snapshot or the manifest.
type header struct {
	magic string
	id    uint64 // the store's id: every file of one directory has the same
	a, b  uint64
}

func (h header) encode() []byte {
	p := make([]byte, headerSize)
	copy(p, h.magic)
	binary.LittleEndian.PutUint32(p[8:], version)
	binary.LittleEndian.PutUint64(p[16:], h.id)
	binary.LittleEndian.PutUint64(p[24:], h.a)
	binary.LittleEndian.PutUint64(p[32:], h.b)
	binary.LittleEndian.PutUint32(p[40:], crc32.Checksum(p[:40], castagnoli))
	return p
}

// decodeHeader parses a header of the given magic.
func decodeHeader(p []byte, magic string) (header, error) {
	if len(p) < headerSize {
		return header{}, errors.New("header cut short")
	}
	if string(p[:8]) != magic {
		return header{}, fmt.Errorf("bad magic %q", p[:8])
	}
	if crc32.Checksum(p[:40], castagnoli) != binary.LittleEndian.Uint32(p[40:]) {
		return header{}, errors.New("header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(p[8:]); v != version {
		return header{}, fmt.Errorf("unsupported version %d", v)
	}
	h := header{
		magic: magic,
		id:    binary.LittleEndian.Uint64(p[16:]),
		a:     binary.LittleEndian.Uint64(p[24:]),
		b:     binary.LittleEndian.Uint64(p[32:]),
	}
	if h.id == 0 {
		return header{}, errors.New("zero store id")
	}
	return h, nil
}

// beginRecord appends room for a record header to dst and returns the
// offset of the record.
func beginRecord(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), len(dst)
}

// endRecord fills in the header of the record that starts at off and runs
// to the end of dst.
func endRecord(dst []byte, off int) []byte {
	rec := dst[off:]
	binary.LittleEndian.PutUint32(rec, uint32(len(rec)-recHdrSize))
	crc := crc32.Update(0, castagnoli, rec[:4])
	crc = crc32.Update(crc, castagnoli, rec[recHdrSize:])
	binary.LittleEndian.PutUint32(rec[4:], crc)
	return dst
}

func appendEntry(dst []byte, seq uint64, line string) []byte {
	dst, off := beginRecord(dst)
	dst = append(dst, recEntry)
	dst = binary.AppendUvarint(dst, seq)
	dst = append(dst, line...)
	return endRecord(dst, off)
}

func appendPeer(dst []byte, name string, pos PeerPos) []byte {
	dst, off := beginRecord(dst)
	dst = append(dst, recPeer)
	dst = binary.AppendUvarint(dst, pos.Epoch)
	dst = binary.AppendUvarint(dst, pos.Seq)
	dst = append(dst, name...)
	return endRecord(dst, off)
}

func appendEnd(dst []byte, entries, peers uint64) []byte {
	dst, off := beginRecord(dst)
	dst = append(dst, recEnd)
	dst = binary.AppendUvarint(dst, entries)
	dst = binary.AppendUvarint(dst, peers)
	return endRecord(dst, off)
}

// record is a decoded record body. Bytes fields alias the body.
type record struct {
	typ  byte
	a, b uint64 // entry: seq; peer: epoch, seq; end: entries, peers
	text []byte // entry: line; peer: name
}

func decodeBody(body []byte) (record, error) {
	r := record{typ: body[0]}
	p := body[1:]
	var n int
	switch r.typ {
	case recEntry:
		if r.a, n = binary.Uvarint(p); n <= 0 {
			return r, errors.New("bad entry seq")
		}
		r.text = p[n:]
	case recPeer:
		if r.a, n = binary.Uvarint(p); n <= 0 {
			return r, errors.New("bad peer epoch")
		}
		p = p[n:]
		if r.b, n = binary.Uvarint(p); n <= 0 {
			return r, errors.New("bad peer seq")
		}
		r.text = p[n:]
	case recEnd:
		if r.a, n = binary.Uvarint(p); n <= 0 {
			return r, errors.New("bad end record")
		}
		p = p[n:]
		if r.b, n = binary.Uvarint(p); n <= 0 || n != len(p) {
			return r, errors.New("bad end record")
		}
	default:
		return r, fmt.Errorf("unknown record type %d", r.typ)
	}
	return r, nil
}

// damage describes a record that is cut short or fails its checksum.
type damage struct {
	off    int64 // offset of the record in the file
	reason string
}

func (d *damage) Error() string { return fmt.Sprintf("offset %d: %s", d.off, d.reason) }

// recordAt reports whether b holds an intact record at offset i, and its
// size. Segments hold no end records, so end says whether one counts.
func recordAt(b []byte, i int, end bool) (int, bool) {
	if i+recHdrSize > len(b) {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[i:]))
	if n == 0 || n > maxBody || n > len(b)-i-recHdrSize {
		return 0, false
	}
	rec := b[i : i+recHdrSize+n]
	if t := rec[recHdrSize]; t != recEntry && t != recPeer && (t != recEnd || !end) {
		return 0, false
	}
	crc := crc32.Update(0, castagnoli, rec[:4])
	crc = crc32.Update(crc, castagnoli, rec[recHdrSize:])
	if crc != binary.LittleEndian.Uint32(rec[4:]) {
		return 0, false
	}
	if _, err := decodeBody(rec[recHdrSize:]); err != nil {
		return 0, false
	}
	return len(rec), true
}

// countRecords counts the intact records in b, a part of a file that may
// be damaged: after a damaged stretch it looks for the next intact record
// byte by byte. A CRC-32C match by chance is about one in four billion.
func countRecords(b []byte, end bool) int {
	n := 0
	for i := 0; i+recHdrSize <= len(b); {
		if size, ok := recordAt(b, i, end); ok {
			n++
			i += size
			continue
		}
		i++
	}
	return n
}

// reader reads the records of a file after its header.
type reader struct {
	br  *bufio.Reader
	off int64 // offset of the next record
	big []byte
	// zeroEnd makes zeros from a record boundary to the end of the file
	// the end of the records (errZeros): the preallocated space of the
	// newest log segment.
	zeroEnd bool
}

// errZeros is the end of the records of a log segment followed by the
// zeros preallocated for it.
var errZeros = errors.New("store: preallocated space")

func newReader(r io.Reader, off int64) *reader {
	return &reader{br: bufio.NewReaderSize(r, 256<<10), off: off}
}

// next returns the next record, io.EOF at a clean end, or a *damage. The
// record's byte fields are valid until the next call.
func (r *reader) next() (record, error) {
	h, err := r.br.Peek(recHdrSize)
	if len(h) == 0 && err == io.EOF {
		return record{}, io.EOF
	}
	if len(h) < recHdrSize {
		return record{}, r.damaged(err, "record header cut short")
	}
	n := int(binary.LittleEndian.Uint32(h))
	if n == 0 && r.zeroEnd && r.restIsZero() {
		return record{}, errZeros
	}
	if n == 0 || n > maxBody {
		return record{}, &damage{r.off, fmt.Sprintf("bad record length %d", n)}
	}
	var rec []byte
	peeked := recHdrSize+n <= r.br.Size()
	if peeked {
		rec, err = r.br.Peek(recHdrSize + n)
		if len(rec) < recHdrSize+n {
			return record{}, r.damaged(err, "record cut short")
		}
	} else {
		if cap(r.big) < recHdrSize+n {
			r.big = make([]byte, recHdrSize+n)
		}
		rec = r.big[:recHdrSize+n]
		if _, err := io.ReadFull(r.br, rec); err != nil {
			return record{}, r.damaged(err, "record cut short")
		}
	}
	crc := crc32.Update(0, castagnoli, rec[:4])
	crc = crc32.Update(crc, castagnoli, rec[recHdrSize:])
	if crc != binary.LittleEndian.Uint32(rec[4:]) {
		return record{}, &damage{r.off, "record checksum mismatch"}
	}
	d, err := decodeBody(rec[recHdrSize:])
	if err != nil {
		return record{}, &damage{r.off, err.Error()}
	}
	if peeked {
		r.br.Discard(len(rec))
	}
	r.off += int64(len(rec))
	return d, nil
}

// restIsZero reports whether every byte left to read is zero. It consumes
// what it reads.
func (r *reader) restIsZero() bool {
	for {
		b, err := r.br.Peek(r.br.Size())
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		r.br.Discard(len(b))
		if err == io.EOF {
			return true
		}
		if err != nil && err != bufio.ErrBufferFull {
			return false
		}
	}
}

// damaged turns a short read into a *damage, or passes an I/O error on.
func (r *reader) damaged(err error, reason string) error {
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return &damage{r.off, reason}
	}
	return err
}
