package protocol

// The white space of the protocol (SPEC §2): the six ASCII white-space
// characters separate fields, in client lines and peer messages alike.
// Everything that splits or trims protocol text uses these.

// IsSpace reports whether c separates fields: space, tab, CR, LF, FF or VT.
func IsSpace(c byte) bool { return isSpace(c) }

// Fields splits line at runs of white space into out and returns how many
// fields it found: at most len(out), or len(out)+1 when there are more.
func Fields(line []byte, out [][]byte) int { return fields(line, out) }

// TrimSpace returns b without leading and trailing white space.
func TrimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// Cut returns the first field of b and what follows it.
func Cut(b []byte) (word, rest []byte) {
	b = TrimSpace(b)
	for i, c := range b {
		if isSpace(c) {
			return b[:i], b[i:]
		}
	}
	return b, nil
}

// TrimEOL returns line without its line ending (LF or CR LF): what a
// "? <line>" reply echoes.
func TrimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}
