package protocol

import (
	"errors"
	"strconv"
	"time"
)

// Time is a client timestamp: POSIX seconds and nanoseconds, never negative.
// It is parsed exactly from text and never passes through a float.
type Time struct {
	Sec  int64 // seconds since the epoch, >= 0
	Nsec int32 // 0 <= Nsec < 1e9
}

var errTime = errors.New("bad time: want POSIX seconds with up to 9 fractional digits")

// ParseTime parses "SECONDS[.FRACTION]" with 1–9 fraction digits. No sign,
// no exponent, no empty parts.
func ParseTime(b []byte) (Time, error) {
	var t Time
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := int64(b[i] - '0')
		if t.Sec > (1<<63-1-d)/10 {
			return Time{}, errTime
		}
		t.Sec = t.Sec*10 + d
		i++
	}
	if i == 0 {
		return Time{}, errTime
	}
	if i == len(b) {
		return t, nil
	}
	if b[i] != '.' {
		return Time{}, errTime
	}
	frac := b[i+1:]
	if len(frac) == 0 || len(frac) > 9 {
		return Time{}, errTime
	}
	var ns int32
	for _, c := range frac {
		if c < '0' || c > '9' {
			return Time{}, errTime
		}
		ns = ns*10 + int32(c-'0')
	}
	for k := len(frac); k < 9; k++ {
		ns *= 10
	}
	t.Nsec = ns
	return t, nil
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Time) Compare(u Time) int {
	switch {
	case t.Sec < u.Sec:
		return -1
	case t.Sec > u.Sec:
		return 1
	case t.Nsec < u.Nsec:
		return -1
	case t.Nsec > u.Nsec:
		return 1
	}
	return 0
}

// AppendDiff appends recv minus t as the AT line's time difference: an
// explicit sign, whole seconds, a dot and exactly nine fractional digits.
// The arithmetic is done in integer seconds and nanoseconds.
func AppendDiff(dst []byte, recv time.Time, t Time) []byte {
	// recv.Unix() is far from the int64 limits and t.Sec >= 0, so this cannot overflow.
	sec := recv.Unix() - t.Sec
	nsec := int64(recv.Nanosecond()) - int64(t.Nsec)
	if nsec < 0 {
		nsec += 1e9
		sec--
	}
	// Now sec*1e9+nsec is the difference with 0 <= nsec < 1e9.
	sign := byte('+')
	if sec < 0 {
		sign = '-'
		if nsec > 0 {
			sec = -sec - 1
			nsec = 1e9 - nsec
		} else {
			sec = -sec
		}
	}
	dst = append(dst, sign)
	dst = strconv.AppendUint(dst, uint64(sec), 10)
	dst = append(dst, '.')
	var frac [9]byte
	for i := 8; i >= 0; i-- {
		frac[i] = byte('0' + nsec%10)
		nsec /= 10
	}
	return append(dst, frac[:]...)
}
