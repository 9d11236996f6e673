package config

import (
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// unknownKeyError describes keys the config file has but herd does not know,
// with the closest known key at the same place for each, when one is close.
// The keys inside an unknown table are not listed again.
func unknownKeyError(keys []toml.Key) string {
	unknown := make(map[string]bool, len(keys))
	for _, k := range keys {
		unknown[k.String()] = true
	}
	var parts []string
	for _, k := range keys {
		if len(k) > 1 && unknown[k[:len(k)-1].String()] {
			continue
		}
		part := k.String()
		if s := suggestKey(k); s != "" {
			part += " (did you mean `" + s + "`?)"
		}
		parts = append(parts, part)
	}
	what := "unknown key "
	if len(parts) > 1 {
		what = "unknown keys "
	}
	return what + strings.Join(parts, ", ")
}

// suggestKey returns the known key closest to k's last part among the keys
// of the table that holds it, or "" when none is close enough to be a typo.
func suggestKey(k toml.Key) string {
	if len(k) == 0 {
		return ""
	}
	t := reflect.TypeFor[Config]()
	for _, part := range k[:len(k)-1] {
		f, ok := fieldByTag(t, part)
		if !ok {
			return ""
		}
		t = f.Type
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	name := k[len(k)-1]
	best, bestD := "", -1
	for _, tag := range tomlKeys(t) {
		d := editDistance(strings.ToLower(name), tag)
		if bestD < 0 || d < bestD {
			best, bestD = tag, d
		}
	}
	if bestD < 0 || bestD > maxTypo(name) {
		return ""
	}
	return best
}

// maxTypo is how many edits a misspelling of a key of name's length may
// have: 1 for short keys, up to 3 for long ones.
func maxTypo(name string) int {
	return min(3, max(1, len(name)/4))
}

// tomlKeys lists the TOML keys of struct type t.
func tomlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag := tomlTag(t.Field(i)); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if f := t.Field(i); tomlTag(f) == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// tomlTag is the key a field is decoded from, or "" for fields the decoder
// skips.
func tomlTag(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	return tag
}

// editDistance is the Levenshtein distance between a and b, counted in
// bytes (keys are ASCII): the fewest insertions, deletions and
// substitutions that turn a into b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
