package offline

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// source tells which data set, and so which row layout, a file holds.
type source uint8

const (
	sourceGeoNames    source = iota // geonameid name lat lon class code country admin1 admin1name population
	sourceOpenFlights               // openflightsid name lat lon city
)

// builder accumulates rows and turns them into an Index.
type builder struct {
	places   []place
	runs     []int             // start of each file's rows in places
	names    []byte            // all names, concatenated
	vicinity []string          // vicinity strings, indexed by place.vic
	vicIdx   map[string]uint16 // interning key -> index into vicinity
	key      []byte            // scratch for interning keys
}

// Capacity hints sized for the embedded data, to avoid regrowing.
const (
	hintPlaces = 210_000
	hintNames  = 2_500_000
)

func newBuilder() *builder {
	return &builder{
		places: make([]place, 0, hintPlaces),
		names:  make([]byte, 0, hintNames),
		vicIdx: make(map[string]uint16, 16_384),
	}
}

// readGz reads one gzipped TSV file of the given source.
func (b *builder) readGz(r io.Reader, src source) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	if err := b.read(zr, src); err != nil {
		return err
	}
	return zr.Close()
}

// read reads TSV rows of the given source; lines starting with '#' and
// empty lines are skipped.
func (b *builder) read(r io.Reader, src source) error {
	b.runs = append(b.runs, len(b.places))
	br := bufio.NewReaderSize(r, 64<<10)
	var cols [10][]byte
	want := 10
	if src == sourceOpenFlights {
		want = 5
	}
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("line %d: too long", n)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 && line[0] != '#' {
			if got := split(line, cols[:]); got != want {
				return fmt.Errorf("line %d: %d columns, want %d", n, got, want)
			}
			if perr := b.add(cols[:want], src); perr != nil {
				return fmt.Errorf("line %d: %w", n, perr)
			}
		}
		if err != nil {
			return nil // io.EOF
		}
	}
}

// split splits line at tabs into cols and returns the number of columns, or
// len(cols)+1 when there are more.
func split(line []byte, cols [][]byte) int {
	n := 0
	for {
		i := bytes.IndexByte(line, '\t')
		if n == len(cols) {
			return n + 1
		}
		if i < 0 {
			cols[n] = line
			return n + 1
		}
		cols[n] = line[:i]
		line = line[i+1:]
		n++
	}
}

func (b *builder) add(c [][]byte, src source) error {
	id, ok1 := parseUint(c[0])
	lat, ok2 := parseInt(c[2])
	lon, ok3 := parseInt(c[3])
	if !ok1 || !ok2 || !ok3 || id == 0 || id > math.MaxUint32 ||
		lat < -90e5 || lat > 90e5 || lon < -180e5 || lon > 180e5 {
		return errors.New("bad id or coordinates")
	}
	name := c[1]
	if len(name) == 0 || len(name) > math.MaxUint8 {
		return fmt.Errorf("name of %d bytes", len(name))
	}
	if len(b.names)+len(name) > math.MaxUint32 {
		return errors.New("names too large")
	}
	p := place{
		lat:     int32(lat),
		lon:     int32(lon),
		id:      uint32(id),
		nameOff: uint32(len(b.names)),
		nameLen: uint8(len(name)),
	}
	b.names = append(b.names, name...)
	var err error
	switch src {
	case sourceGeoNames:
		pop, ok := parseUint(c[9])
		if !ok || pop > math.MaxUint32 {
			return errors.New("bad population")
		}
		p.pop = uint32(pop)
		p.kind = kindOf(c[5])
		// vicinity: "admin1name, CC", or "CC"
		b.key = append(append(b.key[:0], c[8]...), ", "...)
		if len(c[8]) == 0 {
			b.key = b.key[:0]
		}
		b.key = append(b.key, c[6]...)
		p.vic, err = b.intern(b.key)
	case sourceOpenFlights:
		p.kind = kindAirport
		p.vic, err = b.intern(c[4])
	}
	if err != nil {
		return err
	}
	b.places = append(b.places, p)
	return nil
}

// intern returns the index of s in b.vicinity, adding it if new.
func (b *builder) intern(s []byte) (uint16, error) {
	if i, ok := b.vicIdx[string(s)]; ok {
		return i, nil
	}
	if len(b.vicinity) > math.MaxUint16 {
		return 0, errors.New("too many distinct vicinities")
	}
	i := uint16(len(b.vicinity))
	v := string(s)
	b.vicinity = append(b.vicinity, v)
	b.vicIdx[v] = i
	return i, nil
}

// build sorts the places into latitude bands and returns the index. The
// builder must not be used afterwards.
func (b *builder) build() (*Index, error) {
	if len(b.places) == 0 {
		return nil, errors.New("offline places: no data")
	}
	// Each file is normally in index order already (the generator writes it
	// so): sort only a run that is not, then merge the runs.
	var ps []place
	for i, start := range b.runs {
		end := len(b.places)
		if i+1 < len(b.runs) {
			end = b.runs[i+1]
		}
		run := b.places[start:end]
		if !slices.IsSortedFunc(run, placeCmp) {
			slices.SortFunc(run, placeCmp)
		}
		if i == 0 {
			ps = run
		} else {
			ps = merge(ps, run)
		}
	}
	ps = slices.Clip(ps)
	idx := &Index{
		places:   ps,
		names:    string(b.names),
		vicinity: slices.Clip(b.vicinity),
	}
	band := 0
	for i, p := range ps {
		for bp := bandOf(p.lat); band <= bp; band++ {
			idx.bandStart[band] = int32(i)
		}
	}
	for ; band <= nBands; band++ {
		idx.bandStart[band] = int32(len(ps))
	}
	*b = builder{}
	return idx, nil
}

// placeCmp is the order of Index.places: latitude band, longitude, id, kind.
func placeCmp(x, y place) int {
	if bx, by := bandOf(x.lat), bandOf(y.lat); bx != by {
		return cmp.Compare(bx, by)
	}
	if x.lon != y.lon {
		return cmp.Compare(x.lon, y.lon)
	}
	if x.id != y.id {
		return cmp.Compare(x.id, y.id)
	}
	return cmp.Compare(x.kind, y.kind)
}

// merge merges two sorted slices into a new one.
func merge(a, b []place) []place {
	out := make([]place, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if placeCmp(b[0], a[0]) < 0 {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// parseUint parses a non-negative decimal integer of at most 18 digits; an
// empty field is 0.
func parseUint(s []byte) (uint64, bool) {
	if len(s) > 18 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseInt parses an optionally negative decimal integer of at most 18
// digits.
func parseInt(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	v, ok := parseUint(s)
	if neg {
		return -int64(v), ok
	}
	return int64(v), ok
}
