// The layout Google prints its JSON in: a formatter that rewrites any JSON
// value in that layout, byte for byte as Google's own writer would.

package places

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Layout constants of Google's writer (jsoncpp's StyledWriter).
const (
	indentUnit = "   " // three spaces per level
	// rightMargin is the line length from which an array of scalars is
	// printed one element per line: jsoncpp's StyledWriter uses 74.
	rightMargin = 74
	// maxDepth is the deepest nesting of arrays and objects accepted. Google's
	// answers nest about six deep; the limit keeps a hostile upstream from
	// making the indented text quadratically larger than its input.
	maxDepth = 100
)

// errTooDeep reports JSON nested more than maxDepth containers deep.
var errTooDeep = errors.New("json nested too deeply")

// indents is a run of spaces sliced for the indentation of shallow levels.
var indents = strings.Repeat(indentUnit, 16)

// formatter re-lays out one JSON text. It is a validating scanner over src
// that writes Google's layout to out as it goes; the only look-ahead is an
// attempt to print an array on one line, undone if the array does not fit.
type formatter struct {
	src []byte
	pos int // next byte of src to read
	out []byte
}

// format appends the Google layout of the JSON text src to dst. It fails if
// src is not exactly one valid JSON value (surrounding white space allowed).
func format(dst, src []byte) ([]byte, error) {
	f := formatter{src: src, out: dst}
	f.skipSpace()
	if err := f.value(0); err != nil {
		return dst, err
	}
	f.skipSpace()
	if f.pos != len(f.src) {
		return dst, f.errorf("data after the top-level value")
	}
	return f.out, nil
}

func (f *formatter) errorf(format string, args ...any) error {
	return fmt.Errorf("json at offset %d: %s", f.pos, fmt.Sprintf(format, args...))
}

func (f *formatter) skipSpace() {
	for f.pos < len(f.src) {
		switch f.src[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of src.
func (f *formatter) peek() byte {
	if f.pos < len(f.src) {
		return f.src[f.pos]
	}
	return 0
}

// newline starts a new line indented for the given level.
func (f *formatter) newline(level int) {
	f.out = append(f.out, '\n')
	for n := level * len(indentUnit); n > 0; {
		k := min(n, len(indents))
		f.out = append(f.out, indents[:k]...)
		n -= k
	}
}

// value formats the value at f.pos; level is the number of enclosing containers.
func (f *formatter) value(level int) error {
	switch c := f.peek(); c {
	case '{':
		return f.object(level)
	case '[':
		return f.array(level)
	case '"':
		return f.str()
	case 't':
		return f.literal("true")
	case 'f':
		return f.literal("false")
	case 'n':
		return f.literal("null")
	case 0:
		if f.pos >= len(f.src) {
			return f.errorf("unexpected end of input")
		}
	}
	return f.number()
}

func (f *formatter) object(level int) error {
	if level >= maxDepth {
		return errTooDeep
	}
	f.pos++ // {
	f.skipSpace()
	if f.peek() == '}' {
		f.pos++
		f.out = append(f.out, "{}"...)
		return nil
	}
	f.out = append(f.out, '{')
	for {
		f.skipSpace()
		if f.peek() != '"' {
			return f.errorf("expected a member name")
		}
		f.newline(level + 1)
		if err := f.str(); err != nil {
			return err
		}
		f.skipSpace()
		if f.peek() != ':' {
			return f.errorf("expected ':' after a member name")
		}
		f.pos++
		f.out = append(f.out, " : "...)
		f.skipSpace()
		if err := f.value(level + 1); err != nil {
			return err
		}
		if done, err := f.after(level, '}', "an object"); done || err != nil {
			return err
		}
	}
}

func (f *formatter) array(level int) error {
	if level >= maxDepth {
		return errTooDeep
	}
	f.pos++ // [
	f.skipSpace()
	if f.peek() == ']' {
		f.pos++
		f.out = append(f.out, "[]"...)
		return nil
	}
	start, mark := f.pos, len(f.out)
	if level+1 < maxDepth && f.inlineArray() {
		return nil
	}
	f.pos, f.out = start, f.out[:mark]

	f.out = append(f.out, '[')
	for {
		f.skipSpace()
		f.newline(level + 1)
		if err := f.value(level + 1); err != nil {
			return err
		}
		if done, err := f.after(level, ']', "an array"); done || err != nil {
			return err
		}
	}
}

// after reads what follows a member or an element at level: a ',' (more
// follow), or the closing byte, written on a line of its own, which ends
// the object or array (done). in names it in the error.
func (f *formatter) after(level int, closing byte, in string) (done bool, err error) {
	f.skipSpace()
	switch f.peek() {
	case ',':
		f.pos++
		f.out = append(f.out, ',')
		return false, nil
	case closing:
		f.pos++
		f.newline(level)
		f.out = append(f.out, closing)
		return true, nil
	}
	return false, f.errorf("expected ',' or '%c' in %s", closing, in)
}

// inlineArray tries to print the rest of a non-empty array, whose '[' has
// been read, on one line as "[ a, b ]". It reports false, leaving f.pos and
// f.out for the caller to reset, when an element is a non-empty container,
// when the line would reach rightMargin bytes, or on a syntax error (which
// the multi-line pass then reports).
func (f *formatter) inlineArray() bool {
	mark := len(f.out)
	f.out = append(f.out, "[ "...)
	for {
		f.skipSpace()
		switch f.peek() {
		case '{', '[':
			open := f.src[f.pos]
			f.pos++
			f.skipSpace()
			if f.peek() != open+2 { // '}' is '{'+2 and ']' is '['+2
				return false
			}
			f.pos++
			f.out = append(f.out, open, open+2)
		default:
			if f.value(0) != nil {
				return false
			}
		}
		if len(f.out)-mark+len(" ]") >= rightMargin {
			return false
		}
		f.skipSpace()
		switch f.peek() {
		case ',':
			f.pos++
			f.out = append(f.out, ", "...)
		case ']':
			f.pos++
			f.out = append(f.out, " ]"...)
			return true
		default:
			return false
		}
	}
}

func (f *formatter) literal(word string) error {
	if !bytes.HasPrefix(f.src[f.pos:], []byte(word)) {
		return f.errorf("invalid literal")
	}
	f.pos += len(word)
	f.out = append(f.out, word...)
	return nil
}

// number checks the JSON number grammar and copies the number verbatim.
func (f *formatter) number() error {
	s, i := f.src, f.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return f.errorf("invalid character %q looking for a value", f.peek())
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return f.errorf("invalid number")
		}
		i = skipDigits(s, i)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return f.errorf("invalid number")
		}
		i = skipDigits(s, i)
	}
	f.out = append(f.out, s[f.pos:i]...)
	f.pos = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(s []byte, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// plainASCII marks the bytes a string may hold that Google prints as they
// are: printable ASCII other than '"', '\\', '<', '>' and '&'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t[0x7f] = true
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// str reads the string at f.pos and writes it in Google's encoding.
func (f *formatter) str() error {
	s := f.src
	i := f.pos + 1
	for i < len(s) && plainASCII[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' { // the common case: nothing to re-encode
		f.out = append(f.out, s[f.pos:i+1]...)
		f.pos = i + 1
		return nil
	}
	f.out = append(f.out, s[f.pos:i]...)
	for {
		if i >= len(s) {
			f.pos = i
			return f.errorf("unterminated string")
		}
		switch c := s[i]; {
		case c == '"':
			f.out = append(f.out, '"')
			f.pos = i + 1
			return nil
		case c == '\\':
			r, n := unescape(s[i:])
			if n == 0 {
				f.pos = i
				return f.errorf("invalid escape in string")
			}
			f.out = appendRune(f.out, r)
			i += n
		case c < 0x20:
			f.pos = i
			return f.errorf("control character in string")
		case c < utf8.RuneSelf:
			f.out = appendRune(f.out, rune(c))
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				f.out = append(f.out, "\ufffd"...) // as encoding/json decodes it
			} else {
				f.out = append(f.out, s[i:i+n]...)
			}
			i += n
		}
	}
}

// unescape decodes the escape sequence at the start of s and returns the
// rune and the number of bytes used, or 0 bytes if the escape is invalid.
// A surrogate that is not half of a valid pair becomes U+FFFD, as in
// encoding/json.
func unescape(s []byte) (rune, int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(s[2:])
		if r < 0 {
			return 0, 0
		}
		if utf16.IsSurrogate(r) {
			if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
				if r2 := hex4(s[8:]); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						return d, 12
					}
				}
			}
			return utf8.RuneError, 6
		}
		return r, 6
	}
	return 0, 0
}

// hex4 decodes four hex digits, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendRune appends r as it appears inside a string printed by Google.
func appendRune(b []byte, r rune) []byte {
	switch r {
	case '"':
		return append(b, `\"`...)
	case '\\':
		return append(b, `\\`...)
	case '\b':
		return append(b, `\b`...)
	case '\f':
		return append(b, `\f`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	case '<', '>', '&':
		return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	if r < 0x20 {
		return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	return utf8.AppendRune(b, r)
}

// appendString appends s as a JSON string in Google's encoding. Invalid
// UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		b = appendRune(b, r)
	}
	return append(b, '"')
}
