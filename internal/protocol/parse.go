// Package protocol is herd's client wire format: it turns one line of text
// into a typed command and formats the replies. It does no I/O.
//
// Fields are separated by runs of the six ASCII white-space characters
// (space, tab, CR, LF, FF, VT); other Unicode characters, white space or
// not, belong to fields.
package protocol

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Kind says which command a line holds.
type Kind uint8

// The client commands.
const (
	KindIAMAT Kind = iota + 1
	KindWHATSAT
)

// Limits of the client protocol.
const (
	MaxClientID = 256 // bytes in a client id
	MaxRadiusKm = 50
	MaxBound    = 20
)

// Command is one parsed client line. Byte-slice fields alias the line passed
// to Parse and are valid only as long as it is.
type Command struct {
	Kind   Kind
	Client []byte // client id
	// IAMAT
	Loc      []byte  // location exactly as sent
	Lat, Lng float64 // Loc in decimal degrees
	TimeText []byte  // client time exactly as sent
	Time     Time
	// WHATSAT
	RadiusKm float64
	Bound    int
}

// Parse errors. Each says what was wrong with a line; the client is told
// only "? line", the log gets the reason.
var (
	ErrEmpty    = errors.New("empty line")
	ErrCommand  = errors.New("unknown command")
	ErrFields   = errors.New("wrong number of fields")
	ErrClientID = errors.New("bad client id: want 1–256 bytes of valid UTF-8 without control characters")
	ErrLocation = errors.New("bad location: want ±DD.DDD±DDD.DDD with latitude in [-90,90] and longitude in [-180,180]")
	ErrRadius   = errors.New("bad radius: want a decimal number of km, 0 < radius <= 50")
	ErrBound    = errors.New("bad bound: want an integer 1..20")
)

// isSpace reports whether c separates fields.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// fields splits line into at most len(out) fields and returns how many it
// found; it returns len(out)+1 when there are more.
func fields(line []byte, out [][]byte) int {
	n := 0
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return n
		}
		if n == len(out) {
			return n + 1
		}
		start := i
		for i < len(line) && !isSpace(line[i]) {
			i++
		}
		out[n] = line[start:i]
		n++
	}
}

// Parse parses one client line (with or without its line ending).
func Parse(line []byte) (Command, error) {
	var f [4][]byte
	n := fields(line, f[:])
	if n == 0 {
		return Command{}, ErrEmpty
	}
	switch string(f[0]) {
	case "IAMAT":
		if n != 4 {
			return Command{}, ErrFields
		}
		return parseIAMAT(f[1], f[2], f[3])
	case "WHATSAT":
		if n != 4 {
			return Command{}, ErrFields
		}
		return parseWHATSAT(f[1], f[2], f[3])
	}
	return Command{}, ErrCommand
}

func parseIAMAT(client, loc, tm []byte) (Command, error) {
	if !ValidClientID(client) {
		return Command{}, ErrClientID
	}
	lat, lng, ok := ParseLocation(loc)
	if !ok {
		return Command{}, ErrLocation
	}
	t, err := ParseTime(tm)
	if err != nil {
		return Command{}, err
	}
	return Command{Kind: KindIAMAT, Client: client, Loc: loc, Lat: lat, Lng: lng, TimeText: tm, Time: t}, nil
}

func parseWHATSAT(client, radius, bound []byte) (Command, error) {
	if !ValidClientID(client) {
		return Command{}, ErrClientID
	}
	r, ok := parseDecimal(radius)
	if !ok || r <= 0 || r > MaxRadiusKm {
		return Command{}, ErrRadius
	}
	b, ok := parseBound(bound)
	if !ok {
		return Command{}, ErrBound
	}
	return Command{Kind: KindWHATSAT, Client: client, RadiusKm: r, Bound: b}, nil
}

// ValidClientID reports whether b is a valid client id: 1–256 bytes of valid
// UTF-8 with no control characters (C0, DEL or C1) and no field separators.
func ValidClientID(b []byte) bool {
	if len(b) == 0 || len(b) > MaxClientID {
		return false
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size
	}
	return true
}

// ParseLocation parses an ISO 6709 pair "±DD[.DDD]±DDD[.DDD]" and checks the
// ranges of latitude and longitude.
func ParseLocation(b []byte) (lat, lng float64, ok bool) {
	// The range is checked on the text (ValidLocation), so that a value a
	// hair above a limit is not rounded into range by the float conversion.
	if !ValidLocation(b) {
		return 0, 0, false
	}
	split := 1
	for b[split] != '+' && b[split] != '-' {
		split++
	}
	lat, ok1 := parseSignedDecimal(b[:split])
	lng, ok2 := parseSignedDecimal(b[split:])
	return lat, lng, ok1 && ok2
}

func parseSignedDecimal(b []byte) (float64, bool) {
	v, ok := parseDecimal(b[1:])
	if b[0] == '-' {
		v = -v
	}
	return v, ok
}

// parseDecimal parses DIGITS[.DIGITS]: no sign, no exponent, no spaces.
func parseDecimal(b []byte) (float64, bool) {
	digits, dot := 0, false
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(b)-1:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b), 64)
	return v, err == nil
}

func parseBound(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= MaxBound
}
