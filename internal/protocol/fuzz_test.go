package protocol

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParse checks that no line crashes the parser, that accepted fields
// are valid, and that an accepted IAMAT survives AT formatting and parsing
// unchanged (parse(format(x)) == x).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n",
		"WHATSAT kiwi.cs.ucla.edu 10 5\n",
		"IAMAT 🥝 -90+180 0.000000001",
		"\tIAMAT\va\f+1-2\r5\r\n",
		"WHATSAT k 50 20",
		"IAMAT a +90.000001+0 1",
		"AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
		"", "?", "IAMAT", "WHATSAT a 1e1 5",
	} {
		f.Add([]byte(s))
	}
	recv := time.Unix(1700000000, 123456789)
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := Parse(line)
		if err != nil {
			return
		}
		if !ValidClientID(cmd.Client) {
			t.Fatalf("accepted bad client id %q", cmd.Client)
		}
		switch cmd.Kind {
		case KindIAMAT:
			at := AppendAT(nil, "Srv", recv, &cmd)
			back, err := ParseAT(at)
			if err != nil {
				t.Fatalf("ParseAT(%q): %v", at, err)
			}
			if !bytes.Equal(back.Client, cmd.Client) || !bytes.Equal(back.Loc, cmd.Loc) ||
				!bytes.Equal(back.TimeText, cmd.TimeText) || back.Time != cmd.Time || back.Lat != cmd.Lat || back.Lng != cmd.Lng {
				t.Fatalf("round trip changed the command: %+v -> %+v", cmd, back)
			}
			if cmd.Lat < -90 || cmd.Lat > 90 || cmd.Lng < -180 || cmd.Lng > 180 {
				t.Fatalf("accepted out-of-range location %q", cmd.Loc)
			}
		case KindWHATSAT:
			if cmd.RadiusKm <= 0 || cmd.RadiusKm > MaxRadiusKm || cmd.Bound < 1 || cmd.Bound > MaxBound {
				t.Fatalf("accepted bad WHATSAT %+v", cmd)
			}
		default:
			t.Fatalf("unknown kind %d", cmd.Kind)
		}
	})
}

// FuzzValidLocation checks that ValidLocation agrees with ParseLocation.
func FuzzValidLocation(f *testing.F) {
	for _, s := range []string{"+34.068930-118.445127", "+90-180", "+90.0000001+0", "-90.000+180.000", "+0+180.1", "+1e1+1", "+.5+1", "+5.+1", "+0090+0180"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, ok := ParseLocation(b)
		if got := ValidLocation(b); got != ok {
			t.Fatalf("ValidLocation(%q) = %v, ParseLocation says %v", b, got, ok)
		}
	})
}
