package logging

import (
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// MaxLoggedLine is how much of a client line (or reply) a log record
// holds; the rest is cut and the record says how many bytes were cut
// ("truncated"). The client still gets its whole reply.
const MaxLoggedLine = 1 << 10

// ClientLine logs one client line in or out (msg "client input" or
// "client output") as the same JSON record the slog handler would write,
// without its per-record allocations: it is on the hot path of every
// command.
//
// A client line is logged once: a "? <line>" reply is logged as "?" with
// the length of the line it echoes ("echo"), since the line itself is in
// the "client input" record. Lines longer than MaxLoggedLine are cut.
func (f *File) ClientLine(msg, client string, line []byte) {
	if f.level.Level() > slog.LevelInfo {
		return
	}
	echo := -1
	if msg == "client output" && len(line) >= 2 && line[0] == '?' && line[1] == ' ' {
		echo, line = len(line)-2, line[:1]
	}
	line, cut := truncate(line)
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = time.Now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"server":`...)
	b = appendJSONString(b, f.name)
	b = append(b, `,"client":`...)
	b = appendJSONString(b, client)
	if msg == "client output" {
		b = append(b, `,"reply":`...)
	} else {
		b = append(b, `,"line":`...)
	}
	b = appendJSONBytes(b, line)
	if echo >= 0 {
		b = append(b, `,"echo":`...)
		b = strconv.AppendInt(b, int64(echo), 10)
	}
	if cut > 0 {
		b = append(b, `,"truncated":`...)
		b = strconv.AppendInt(b, int64(cut), 10)
	}
	b = append(b, "}\n"...)
	f.w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		linePool.Put(bp)
	}
}

// truncate cuts line to at most MaxLoggedLine bytes, at a UTF-8 character
// boundary, and returns how many bytes it cut.
func truncate(line []byte) ([]byte, int) {
	if len(line) <= MaxLoggedLine {
		return line, 0
	}
	n := MaxLoggedLine
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(line[i]) {
			n = i
			break
		}
	}
	return line[:n], len(line) - n
}

func appendJSONString(b []byte, s string) []byte {
	return appendJSON(b, s, nil)
}

func appendJSONBytes(b []byte, s []byte) []byte {
	return appendJSON(b, "", s)
}

// appendJSON appends a JSON string of s (or of bs when s is empty): quotes
// and backslashes escaped, control characters as \n, \r, \t or \u00XX,
// U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD — as log/slog does.
func appendJSON(b []byte, s string, bs []byte) []byte {
	const hex = "0123456789abcdef"
	n := len(s)
	at := func(i int) byte { return s[i] }
	decode := func(i int) (rune, int) { return utf8.DecodeRuneInString(s[i:]) }
	if bs != nil {
		n = len(bs)
		at = func(i int) byte { return bs[i] }
		decode = func(i int) (rune, int) { return utf8.DecodeRune(bs[i:]) }
	}
	b = append(b, '"')
	for i := 0; i < n; {
		c := at(i)
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := decode(i)
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = strconv.AppendInt(b, int64(r&0xf), 16)
		default:
			if bs != nil {
				b = append(b, bs[i:i+size]...)
			} else {
				b = append(b, s[i:i+size]...)
			}
		}
		i += size
	}
	return append(b, '"')
}
