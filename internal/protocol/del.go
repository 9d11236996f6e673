package protocol

import (
	"errors"
	"strconv"
)

// A tombstone records that a client was deleted herd-wide (SPEC §11). It is
// stored, logged and flooded like an AT line, as the line
//
//	DEL <server> <client> <time>
//
// where server is the server that deleted the client and time is that
// server's clock when it did (POSIX seconds, nine fractional digits). The
// merge rule treats it like an AT line with that client time; "DEL" sorts
// after "AT" byte-wise, so at equal times a tombstone wins.

var errDEL = errors.New("bad DEL line")

// IsDEL reports whether a record line is a tombstone.
func IsDEL(line string) bool { return len(line) > 4 && line[:4] == "DEL " }

// AppendDEL appends the tombstone line for client, deleted by server at t.
func AppendDEL(dst []byte, server string, client string, t Time) []byte {
	dst = append(dst, "DEL "...)
	dst = append(dst, server...)
	dst = append(dst, ' ')
	dst = append(dst, client...)
	dst = append(dst, ' ')
	return AppendTime(dst, t)
}

// AppendTime appends t as POSIX seconds with nine fractional digits.
func AppendTime(dst []byte, t Time) []byte {
	dst = strconv.AppendInt(dst, t.Sec, 10)
	dst = append(dst, '.')
	var frac [9]byte
	n := t.Nsec
	for i := 8; i >= 0; i-- {
		frac[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, frac[:]...)
}

// CheckDEL validates a tombstone line and returns its client id (aliasing
// line) and time.
func CheckDEL(line []byte) (client []byte, t Time, err error) {
	var f [4][]byte
	if n := fields(line, f[:]); n != 4 || string(f[0]) != "DEL" {
		return nil, Time{}, errDEL
	}
	if !ValidServerName(f[1]) || !ValidClientID(f[2]) {
		return nil, Time{}, errDEL
	}
	t, err = ParseTime(f[3])
	if err != nil {
		return nil, Time{}, err
	}
	return f[2], t, nil
}

// DEL is a parsed tombstone line; byte slices alias the line.
type DEL struct {
	Server, Client, TimeText []byte
	Time                     Time
}

// ParseDEL parses a tombstone line.
func ParseDEL(line []byte) (DEL, error) {
	var f [4][]byte
	if n := fields(line, f[:]); n != 4 || string(f[0]) != "DEL" {
		return DEL{}, errDEL
	}
	client, t, err := CheckDEL(line)
	if err != nil {
		return DEL{}, err
	}
	return DEL{Server: f[1], Client: client, TimeText: f[3], Time: t}, nil
}
