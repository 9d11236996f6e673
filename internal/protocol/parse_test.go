package protocol

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	tests := map[string]struct {
		line string
		want Command
	}{
		"course example": {"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n",
			Command{Kind: KindIAMAT, Client: []byte("kiwi.cs.ucla.edu"), Loc: []byte("+34.068930-118.445127"), Lat: 34.068930, Lng: -118.445127,
				TimeText: []byte("1621464827.959498503"), Time: Time{1621464827, 959498503}}},
		"all separators": {"\t IAMAT\v\fa\r+1-2 \t5\r\n",
			Command{Kind: KindIAMAT, Client: []byte("a"), Loc: []byte("+1-2"), Lat: 1, Lng: -2, TimeText: []byte("5"), Time: Time{5, 0}}},
		"unicode id": {"IAMAT 🥝café +0.5+179.999 0.1",
			Command{Kind: KindIAMAT, Client: []byte("🥝café"), Loc: []byte("+0.5+179.999"), Lat: 0.5, Lng: 179.999, TimeText: []byte("0.1"), Time: Time{0, 100000000}}},
		"no-break space inside id": {"IAMAT a\u00a0b -90+180 7",
			Command{Kind: KindIAMAT, Client: []byte("a\u00a0b"), Loc: []byte("-90+180"), Lat: -90, Lng: 180, TimeText: []byte("7"), Time: Time{7, 0}}},
		"boundaries": {"IAMAT x +90.000-180.0000 00012.000000001",
			Command{Kind: KindIAMAT, Client: []byte("x"), Loc: []byte("+90.000-180.0000"), Lat: 90, Lng: -180, TimeText: []byte("00012.000000001"), Time: Time{12, 1}}},
		"whatsat": {"WHATSAT kiwi.cs.ucla.edu 10 5",
			Command{Kind: KindWHATSAT, Client: []byte("kiwi.cs.ucla.edu"), RadiusKm: 10, Bound: 5}},
		"whatsat limits":        {"WHATSAT k 50 20", Command{Kind: KindWHATSAT, Client: []byte("k"), RadiusKm: 50, Bound: 20}},
		"whatsat fraction":      {"WHATSAT k 0.001 1", Command{Kind: KindWHATSAT, Client: []byte("k"), RadiusKm: 0.001, Bound: 1}},
		"whatsat leading zeros": {"WHATSAT k 010.50 007", Command{Kind: KindWHATSAT, Client: []byte("k"), RadiusKm: 10.5, Bound: 7}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			if !equalCommand(got, tt.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
			}
		})
	}
}

func equalCommand(a, b Command) bool {
	return a.Kind == b.Kind && bytes.Equal(a.Client, b.Client) && bytes.Equal(a.Loc, b.Loc) &&
		a.Lat == b.Lat && a.Lng == b.Lng && bytes.Equal(a.TimeText, b.TimeText) && a.Time == b.Time &&
		a.RadiusKm == b.RadiusKm && a.Bound == b.Bound
}

func TestParseInvalid(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), MaxClientID+1))
	ok256 := string(bytes.Repeat([]byte("x"), MaxClientID))
	if _, err := Parse([]byte("IAMAT " + ok256 + " +1+1 1")); err != nil {
		t.Fatalf("a 256-byte id must be valid: %v", err)
	}
	tests := map[string]struct {
		line string
		err  error
	}{
		"empty":               {"", ErrEmpty},
		"blank":               {" \t\r\n", ErrEmpty},
		"unknown command":     {"HELLO a b c", ErrCommand},
		"lower case command":  {"iamat a +1+1 1", ErrCommand},
		"peer AT from client": {"AT Goloman +0.1 a +1+1 1", ErrCommand},
		"too few fields":      {"IAMAT a +1+1", ErrFields},
		"too many fields":     {"IAMAT a +1+1 1 extra", ErrFields},
		"whatsat few":         {"WHATSAT a 10", ErrFields},
		"whatsat many":        {"WHATSAT a 10 5 5", ErrFields},
		"id too long":         {"IAMAT " + long + " +1+1 1", ErrClientID},
		"id control char":     {"IAMAT a\x01b +1+1 1", ErrClientID},
		"id DEL":              {"IAMAT a\x7fb +1+1 1", ErrClientID},
		"id C1 control":       {"IAMAT a\u0085b +1+1 1", ErrClientID},
		"id invalid utf8":     {"IAMAT a\xffb +1+1 1", ErrClientID},
		"id truncated utf8":   {"IAMAT a\xf0\x9f +1+1 1", ErrClientID},
		"lat out of range":    {"IAMAT a +90.000001+0 1", ErrLocation},
		"lng out of range":    {"IAMAT a +0-180.5 1", ErrLocation},
		"lat only":            {"IAMAT a +34.0 1", ErrLocation},
		"no sign":             {"IAMAT a 34.0-118.0 1", ErrLocation},
		"three parts":         {"IAMAT a +1+1+1 1", ErrLocation},
		"empty lat":           {"IAMAT a +-118 1", ErrLocation},
		"trailing dot":        {"IAMAT a +34.-118 1", ErrLocation},
		"leading dot":         {"IAMAT a +.5-118 1", ErrLocation},
		"exponent location":   {"IAMAT a +1e1-118 1", ErrLocation},
		"letters in location": {"IAMAT a +3x-118 1", ErrLocation},
		"negative time":       {"IAMAT a +1+1 -1", errTime},
		"plus time":           {"IAMAT a +1+1 +1", errTime},
		"exponent time":       {"IAMAT a +1+1 1e9", errTime},
		"ten fraction digits": {"IAMAT a +1+1 1.1234567890", errTime},
		"empty fraction":      {"IAMAT a +1+1 1.", errTime},
		"only fraction":       {"IAMAT a +1+1 .5", errTime},
		"time overflow":       {"IAMAT a +1+1 9223372036854775808", errTime},
		"radius zero":         {"WHATSAT a 0 5", ErrRadius},
		"radius too big":      {"WHATSAT a 50.0001 5", ErrRadius},
		"radius negative":     {"WHATSAT a -1 5", ErrRadius},
		"radius exponent":     {"WHATSAT a 1e1 5", ErrRadius},
		"radius nan":          {"WHATSAT a NaN 5", ErrRadius},
		"bound zero":          {"WHATSAT a 10 0", ErrBound},
		"bound too big":       {"WHATSAT a 10 21", ErrBound},
		"bound fraction":      {"WHATSAT a 10 5.0", ErrBound},
		"bound sign":          {"WHATSAT a 10 +5", ErrBound},
		"whatsat bad id utf8": {"WHATSAT \xff 10 5", ErrClientID},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tt.line))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.line, err, tt.err)
			}
		})
	}
}

func TestParseTimeMax(t *testing.T) {
	got, err := ParseTime([]byte("9223372036854775807.999999999"))
	if err != nil || got != (Time{1<<63 - 1, 999999999}) {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestAppendDiff(t *testing.T) {
	recv := func(sec int64, nsec int) time.Time { return time.Unix(sec, int64(nsec)) }
	tests := map[string]struct {
		recv time.Time
		t    Time
		want string
	}{
		"course example": {recv(1621464828, 223371889), Time{1621464827, 959498503}, "+0.263873386"},
		"zero":           {recv(100, 5), Time{100, 5}, "+0.000000000"},
		"whole seconds":  {recv(110, 0), Time{100, 0}, "+10.000000000"},
		"client ahead":   {recv(100, 0), Time{100, 1}, "-0.000000001"},
		"ahead by more":  {recv(100, 250000000), Time{102, 500000000}, "-2.250000000"},
		"ahead whole":    {recv(100, 0), Time{103, 0}, "-3.000000000"},
		"borrow":         {recv(101, 100), Time{100, 200}, "+0.999999900"},
		"far future":     {recv(1700000000, 0), Time{1<<63 - 1, 999999999}, "-9223372035154775807.999999999"},
		"epoch client":   {recv(1700000000, 123456789), Time{0, 0}, "+1700000000.123456789"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(AppendDiff(nil, tt.recv, tt.t))
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAT(t *testing.T) {
	cmd, err := Parse([]byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"))
	if err != nil {
		t.Fatal(err)
	}
	line := AppendAT(nil, "Goloman", time.Unix(1621464828, 223371889), &cmd)
	const want = "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	if string(line) != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
	at, err := ParseAT(line)
	if err != nil {
		t.Fatal(err)
	}
	if string(at.Server) != "Goloman" || string(at.Diff) != "+0.263873386" || string(at.Client) != "kiwi.cs.ucla.edu" ||
		at.Time != cmd.Time || at.Lat != cmd.Lat {
		t.Fatalf("ParseAT = %+v", at)
	}
	for _, bad := range []string{
		"", "AT", "AT Goloman +0.263873386 kiwi +34-118", "IAMAT Goloman +0.263873386 kiwi +34-118 1",
		"AT Gol/oman +0.263873386 kiwi +34-118 1", "AT Goloman 0.263873386 kiwi +34-118 1",
		"AT Goloman +0.26387338 kiwi +34-118 1", "AT Goloman +0x263873386 kiwi +34-118 1",
		"AT Goloman +0.263873386 kiwi +34-118 1 extra", "AT Goloman +0.263873386 kiwi +134-118 1",
	} {
		if _, err := ParseAT([]byte(bad)); err == nil {
			t.Errorf("ParseAT(%q) succeeded", bad)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
	var dst []byte
	recv := time.Unix(1621464828, 0)
	n := testing.AllocsPerRun(100, func() {
		cmd, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		dst = AppendAT(dst[:0], "Goloman", recv, &cmd)
	})
	if n != 0 {
		t.Fatalf("Parse+AppendAT allocated %v times per run", n)
	}
}

func BenchmarkParseIAMAT(b *testing.B) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAT(b *testing.B) {
	cmd, _ := Parse([]byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"))
	recv := time.Now()
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendAT(dst[:0], "Goloman", recv, &cmd)
	}
}

func BenchmarkParseWHATSAT(b *testing.B) {
	line := []byte("WHATSAT kiwi.cs.ucla.edu 10 5\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLocationLimitsAreTextual(t *testing.T) {
	for _, b := range []string{"+90.00000000000000000001+0", "+0+180.000000000000000000001"} {
		if _, _, ok := ParseLocation([]byte(b)); ok {
			t.Errorf("%s accepted: a float would round it into range", b)
		}
	}
}
