package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"herd/internal/protocol"
)

// The checks below follow the client protocol of SPEC §2 and nothing else,
// so they hold for any herd that speaks it: they never assume a server name,
// a clock or a places provider.

// maxShown is how much of a wrong reply an error message quotes.
const maxShown = 160

// CheckIAMATReply checks the reply to "IAMAT client loc tm": exactly one
// line "AT <server> ±S.NNNNNNNNN <client> <loc> <tm>", whose last three
// fields are byte-for-byte those sent. It returns nil for a good reply and
// otherwise an error that quotes the reply.
func CheckIAMATReply(reply []byte, client, loc string, tm []byte) error {
	line, rest, ok := bytes.Cut(reply, []byte{'\n'})
	if !ok {
		return wrong(reply, "not a complete line")
	}
	if len(rest) > 0 {
		return wrong(reply, "more than one line")
	}
	var f [7][]byte
	n := protocol.Fields(line, f[:])
	if n > 0 && string(f[0]) == "?" {
		return wrong(reply, "the server rejected the IAMAT")
	}
	if n != 6 || string(f[0]) != "AT" {
		return wrong(reply, "want \"AT <server> <diff> <client> <location> <time>\"")
	}
	if !isTimeDiff(f[2]) {
		return wrong(reply, fmt.Sprintf("time difference %q: want a sign and exactly 9 fractional digits", f[2]))
	}
	switch {
	case string(f[3]) != client:
		return wrong(reply, fmt.Sprintf("client %q, want %q", f[3], client))
	case string(f[4]) != loc:
		return wrong(reply, fmt.Sprintf("location %q, want %q", f[4], loc))
	case !bytes.Equal(f[5], tm):
		return wrong(reply, fmt.Sprintf("time %q, want %q", f[5], tm))
	}
	return nil
}

// CheckWHATSATReply checks the reply to a WHATSAT about client: an AT line
// about that client (any location and time: the record may have changed),
// then one JSON object, then an empty line, with no empty line inside the
// JSON. It returns the object's "status" member.
func CheckWHATSATReply(reply []byte, client string) (status string, err error) {
	line, body, ok := bytes.Cut(reply, []byte{'\n'})
	if !ok {
		return "", wrong(reply, "not a complete line")
	}
	if err := checkATLine(reply, line, client); err != nil {
		return "", err
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		return "", wrong(reply, "does not end with an empty line")
	}
	body = body[:len(body)-2]
	if bytes.HasSuffix(body, []byte{'\n'}) {
		return "", wrong(reply, "ends with more than one empty line")
	}
	if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		return "", wrong(reply, "an empty line inside the JSON")
	}
	var obj struct {
		Status  *string         `json:"status"`
		Results json.RawMessage `json:"results"`
	}
	if len(bytes.TrimSpace(body)) == 0 || bytes.TrimSpace(body)[0] != '{' {
		return "", wrong(reply, "no JSON object after the AT line")
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return "", wrong(reply, "bad JSON: "+err.Error())
	}
	if obj.Status == nil {
		return "", wrong(reply, "the JSON object has no \"status\"")
	}
	if len(obj.Results) == 0 || obj.Results[0] != '[' {
		return "", wrong(reply, "the JSON object has no \"results\" array")
	}
	return *obj.Status, nil
}

// checkATLine checks the first line of a WHATSAT reply.
func checkATLine(reply, line []byte, client string) error {
	var f [7][]byte
	n := protocol.Fields(line, f[:])
	if n > 0 && string(f[0]) == "?" {
		return wrong(reply, "the server rejected the WHATSAT")
	}
	if n != 6 || string(f[0]) != "AT" {
		return wrong(reply, "want \"AT <server> <diff> <client> <location> <time>\" first")
	}
	switch {
	case !isTimeDiff(f[2]):
		return wrong(reply, fmt.Sprintf("time difference %q: want a sign and exactly 9 fractional digits", f[2]))
	case string(f[3]) != client:
		return wrong(reply, fmt.Sprintf("client %q, want %q", f[3], client))
	case !isLocation(f[4]):
		return wrong(reply, fmt.Sprintf("location %q is not ±lat±lng", f[4]))
	case !isTime(f[5]):
		return wrong(reply, fmt.Sprintf("time %q is not POSIX seconds", f[5]))
	}
	return nil
}

// CheckGEOADDReply checks the reply of a Redis server to the GEOADD of one
// member: the integer reply ":1" (added) or ":0" (moved), ended by CR LF.
func CheckGEOADDReply(reply []byte) error {
	if string(reply) != ":1\r\n" && string(reply) != ":0\r\n" {
		return wrong(reply, "want \":1\" or \":0\" (the reply of a Redis server to GEOADD of one member)")
	}
	return nil
}

// CheckRejectReply checks that reply is "? " followed by line (without its
// line ending) and a LF: the answer to a command the server cannot answer.
func CheckRejectReply(reply []byte, line string) error {
	if len(reply) != len(line)+3 || string(reply[:2]) != "? " || string(reply[2:len(reply)-1]) != line || reply[len(reply)-1] != '\n' {
		return wrong(reply, fmt.Sprintf("want %q", "? "+line))
	}
	return nil
}

// wrongReply is a reply that breaks the protocol.
type wrongReply struct {
	reply  string
	reason string
}

func (e *wrongReply) Error() string {
	return fmt.Sprintf("reply %s: %s", e.reply, e.reason)
}

func wrong(reply []byte, reason string) error {
	shown := reply
	cut := ""
	if len(shown) > maxShown {
		shown, cut = shown[:maxShown], "…"
	}
	return &wrongReply{reply: strconv.Quote(string(shown)) + cut, reason: reason}
}

// isTimeDiff reports whether b is a sign, digits, a dot and exactly 9 digits.
func isTimeDiff(b []byte) bool {
	if len(b) < 12 || (b[0] != '+' && b[0] != '-') {
		return false
	}
	dot := len(b) - 10
	return b[dot] == '.' && allDigits(b[1:dot]) && allDigits(b[dot+1:])
}

// isTime reports whether b is digits with an optional fraction of 1 to 9 digits.
func isTime(b []byte) bool {
	whole, frac, hasDot := bytes.Cut(b, []byte{'.'})
	if !allDigits(whole) {
		return false
	}
	return !hasDot || (len(frac) <= 9 && allDigits(frac))
}

// isLocation reports whether b is ±DD[.D…]±DDD[.D…].
func isLocation(b []byte) bool {
	if len(b) == 0 || (b[0] != '+' && b[0] != '-') {
		return false
	}
	i := bytes.IndexAny(b[1:], "+-")
	if i < 0 {
		return false
	}
	return isDecimal(b[1:1+i]) && isDecimal(b[2+i:])
}

func isDecimal(b []byte) bool {
	whole, frac, hasDot := bytes.Cut(b, []byte{'.'})
	return allDigits(whole) && (!hasDot || allDigits(frac))
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
