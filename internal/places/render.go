package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Render returns r as the text of one JSON object, laid out exactly as
// Google's Nearby Search prints it, with results cut to bound entries
// (bound <= 0 means no cut).
//
// Top-level members appear in alphabetical order, as Google sends them:
// error_message (only when non-empty), html_attributions (always, [] when
// empty), next_page_token (only when non-empty), results (always), status
// (always), and the members of Extra merged in at their sorted places. An
// Extra member whose name is one of those five is ignored: the typed field
// wins.
//
// The layout is Google's, which matches jsoncpp's StyledWriter: a three-space
// indent, "key" : value, every member of a non-empty object on its own line,
// {} and [] for empty containers, and an array on one line as [ a, b ] when
// all its elements are scalars or empty containers and that line is shorter
// than 74 bytes; otherwise one element per line. Strings are re-encoded the
// way Google encodes them: <, > and & as \u003c, \u003e and \u0026, control
// characters escaped, everything else (non-ASCII included) as raw UTF-8.
// Numbers are copied verbatim. Member order inside results is kept.
//
// Following the WHATSAT reply rule, any run of two or more newlines is
// collapsed to one and trailing newlines are removed, so the text never ends
// in a newline; the caller adds the framing. If a raw member of r is not
// valid JSON (or nests more than 100 arrays and objects deep), Render
// returns an UNKNOWN_ERROR response instead, so its output is always one
// valid JSON object.
func (r *Response) Render(bound int) []byte {
	out, err := r.render(bound)
	if err != nil {
		fallback := ErrorResponse(StatusUnknownError, "herd: the places provider returned invalid JSON")
		out, _ = fallback.render(0) // every member is built here, so it cannot fail
	}
	return collapseNewlines(out)
}

// member is one top-level member of a rendered response: raw JSON in value,
// or, for html_attributions and results, the raw elements of an array.
type member struct {
	name    string
	value   []byte
	array   []json.RawMessage
	isArray bool
}

// docPool recycles the buffers holding the compact text that render lays
// out; buffers larger than maxPooledDoc are left to the garbage collector.
var docPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledDoc = 256 << 10

// render lays r out; it fails only when a raw member of r is not valid JSON.
func (r *Response) render(bound int) ([]byte, error) {
	results := r.Results
	if bound > 0 && len(results) > bound {
		results = results[:bound]
	}
	members := make([]member, 0, 5+len(r.Extra))
	if r.ErrorMessage != "" {
		members = append(members, member{name: "error_message", value: appendString(nil, r.ErrorMessage)})
	}
	members = append(members, member{name: "html_attributions", array: r.HTMLAttributions, isArray: true})
	if r.NextPageToken != "" {
		members = append(members, member{name: "next_page_token", value: appendString(nil, r.NextPageToken)})
	}
	members = append(members,
		member{name: "results", array: results, isArray: true},
		member{name: "status", value: appendString(nil, r.Status)},
	)
	for name, value := range r.Extra {
		if !isStandardMember(name) {
			members = append(members, member{name: name, value: value})
		}
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })

	// Build the object in compact form, then lay it out in one pass.
	bufp := docPool.Get().(*[]byte)
	defer func() {
		if cap(*bufp) <= maxPooledDoc {
			docPool.Put(bufp)
		}
	}()
	doc := append((*bufp)[:0], '{')
	for i, m := range members {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = appendString(doc, m.name)
		doc = append(doc, ':')
		if !m.isArray {
			if len(m.value) == 0 {
				return nil, errors.New("empty raw JSON value for " + m.name)
			}
			doc = append(doc, m.value...)
			continue
		}
		doc = append(doc, '[')
		for j, v := range m.array {
			if len(v) == 0 { // it would vanish from the text
				return nil, errors.New("empty raw JSON value in " + m.name)
			}
			if j > 0 {
				doc = append(doc, ',')
			}
			doc = append(doc, v...)
		}
		doc = append(doc, ']')
	}
	doc = append(doc, '}')
	*bufp = doc
	// The layout adds indentation; twice the compact size is rarely exceeded.
	return format(make([]byte, 0, 2*len(doc)), doc)
}

// isStandardMember reports whether name is a member Response has a field for.
func isStandardMember(name string) bool {
	switch name {
	case "error_message", "html_attributions", "next_page_token", "results", "status":
		return true
	}
	return false
}

// collapseNewlines applies the WHATSAT reply rule: every run of two or more
// newlines becomes one, and trailing newlines are dropped.
func collapseNewlines(b []byte) []byte {
	if bytes.Contains(b, []byte("\n\n")) {
		w := 0
		var prev byte
		for _, c := range b {
			if c != '\n' || prev != '\n' {
				b[w] = c
				w++
			}
			prev = c
		}
		b = b[:w]
	}
	return bytes.TrimRight(b, "\n")
}
