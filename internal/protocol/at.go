package protocol

import (
	"errors"
	"time"
)

// AppendAT appends the AT reply line for an IAMAT received by server at
// recv, without a line ending:
//
//	AT <server> <±diff> <client> <location> <time>
//
// The last three fields are byte-for-byte copies of the IAMAT's fields.
func AppendAT(dst []byte, server string, recv time.Time, c *Command) []byte {
	dst = append(dst, "AT "...)
	dst = append(dst, server...)
	dst = append(dst, ' ')
	dst = AppendDiff(dst, recv, c.Time)
	dst = append(dst, ' ')
	dst = append(dst, c.Client...)
	dst = append(dst, ' ')
	dst = append(dst, c.Loc...)
	dst = append(dst, ' ')
	return append(dst, c.TimeText...)
}

// AT is a parsed AT line, as stored and as flooded between servers. Byte
// slices alias the parsed line.
type AT struct {
	Server   []byte // the server that received the IAMAT
	Diff     []byte // its time difference, as written
	Client   []byte
	Loc      []byte
	Lat, Lng float64
	TimeText []byte
	Time     Time
}

var errAT = errors.New("bad AT line")

// ParseAT parses and validates an AT line (with or without line ending).
func ParseAT(line []byte) (AT, error) {
	var f [6][]byte
	if n := fields(line, f[:]); n != 6 || string(f[0]) != "AT" {
		return AT{}, errAT
	}
	if !ValidServerName(f[1]) || !validDiff(f[2]) {
		return AT{}, errAT
	}
	c, err := parseIAMAT(f[3], f[4], f[5])
	if err != nil {
		return AT{}, err
	}
	return AT{Server: f[1], Diff: f[2], Client: c.Client, Loc: c.Loc, Lat: c.Lat, Lng: c.Lng, TimeText: c.TimeText, Time: c.Time}, nil
}

// ValidServerName reports whether b can name a server: 1–64 bytes of ASCII
// letters, digits, '-', '_' and '.'.
func ValidServerName(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// validDiff checks "±S.NNNNNNNNN".
func validDiff(b []byte) bool {
	if len(b) < 12 || (b[0] != '+' && b[0] != '-') {
		return false
	}
	dot := len(b) - 10
	if b[dot] != '.' {
		return false
	}
	for i, c := range b[1:] {
		if i+1 != dot && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// CheckAT validates an AT line like ParseAT, without converting the
// location to floats, and returns what a stored record needs: the client id
// (aliasing line) and the client's time.
func CheckAT(line []byte) (client []byte, t Time, err error) {
	var f [6][]byte
	if n := fields(line, f[:]); n != 6 || string(f[0]) != "AT" {
		return nil, Time{}, errAT
	}
	if !ValidServerName(f[1]) || !validDiff(f[2]) || !ValidClientID(f[3]) || !ValidLocation(f[4]) {
		return nil, Time{}, errAT
	}
	t, err = ParseTime(f[5])
	if err != nil {
		return nil, Time{}, err
	}
	return f[3], t, nil
}

// ValidLocation reports whether b is a location ParseLocation accepts,
// without converting it to floats.
func ValidLocation(b []byte) bool {
	if len(b) < 4 || (b[0] != '+' && b[0] != '-') {
		return false
	}
	split := -1
	for i := 1; i < len(b); i++ {
		if b[i] == '+' || b[i] == '-' {
			split = i
			break
		}
	}
	return split > 0 && validCoord(b[1:split], 90) && validCoord(b[split+1:], 180)
}

// validCoord checks DIGITS[.DIGITS] with a value of at most limit.
func validCoord(b []byte, limit int) bool {
	whole, frac, dot := b, []byte(nil), false
	for i, c := range b {
		if c == '.' {
			whole, frac, dot = b[:i], b[i+1:], true
			break
		}
	}
	if len(whole) == 0 || dot && len(frac) == 0 {
		return false
	}
	v := 0
	for _, c := range whole {
		if c < '0' || c > '9' {
			return false
		}
		if v <= limit {
			v = v*10 + int(c-'0')
		}
	}
	nonzero := false
	for _, c := range frac {
		if c < '0' || c > '9' {
			return false
		}
		nonzero = nonzero || c != '0'
	}
	return v < limit || v == limit && !nonzero
}

// ATLocation returns the latitude and longitude of a stored AT line, one
// that ParseAT or CheckAT accepted before: it finds the location field
// without checking the others again, and without copying the line. ok is
// false for a line that is not an AT line of six fields, or whose
// location is invalid.
func ATLocation(line string) (lat, lng float64, ok bool) {
	var loc string
	n := 0
	for i := 0; ; n++ {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		switch {
		case n == 0 && line[i:j] != "AT":
			return 0, 0, false
		case n == 4:
			loc = line[i:j]
		}
		i = j
	}
	if n != 6 {
		return 0, 0, false
	}
	var buf [48]byte // a location that fits needs no allocation
	return ParseLocation(append(buf[:0], loc...))
}
