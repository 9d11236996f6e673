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
	b = appendJSON(b, msg)
	b = append(b, `,"server":`...)
	b = appendJSON(b, f.name)
	b = append(b, `,"client":`...)
	b = appendJSON(b, client)
	if msg == "client output" {
		b = append(b, `,"reply":`...)
	} else {
		b = append(b, `,"line":`...)
	}
	b = appendJSON(b, line)
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

// jsonPlain marks the ASCII bytes that stand for themselves in a JSON
// string: printable, other than the quote and the backslash.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSON appends a JSON string of s: quotes and backslashes escaped,
// control characters as \n, \r, \t or \u00XX, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD — as log/slog does. Runs of bytes that need no
// escape are copied whole.
func appendJSON[S ~string | ~[]byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	plain := 0 // s[plain:i] needs no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && jsonPlain[c] {
			i++
			continue
		}
		b = append(b, s[plain:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			plain = i
			continue
		}
		var rb [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(rb[:copy(rb[:], s[i:])])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = strconv.AppendInt(b, int64(r&0xf), 16)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
		plain = i
	}
	b = append(b, s[plain:]...)
	return append(b, '"')
}
