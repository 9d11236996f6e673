package httpapi

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// openAPIRoutes reads the operations of docs/openapi.yaml as mux patterns
// ("METHOD /path"): the keys of "paths:" (two spaces in) and their HTTP
// methods (four spaces in).
func openAPIRoutes(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	var out []string
	inPaths, cur := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		if line == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, _, isKey := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case indent == 0:
			inPaths = line == "paths:"
		case !inPaths || !isKey:
		case indent == 2:
			cur = key
		case indent == 4 && slices.Contains(methods, key):
			out = append(out, strings.ToUpper(key)+" "+cur)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml in step with the mux:
// every route is documented and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := openAPIRoutes(t, "../../docs/openapi.yaml")
	routes := New(Options{}).Routes()
	slices.Sort(doc)
	slices.Sort(routes)
	if len(routes) == 0 {
		t.Fatal("no routes")
	}
	for _, r := range routes {
		if !slices.Contains(doc, r) {
			t.Errorf("route %q is served but not in docs/openapi.yaml", r)
		}
	}
	for _, d := range doc {
		if !slices.Contains(routes, d) {
			t.Errorf("docs/openapi.yaml documents %q, which no route serves", d)
		}
	}
}
