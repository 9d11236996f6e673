package protocol

import "testing"

func TestATLocation(t *testing.T) {
	tests := []struct {
		name, line string
		lat, lng   float64
		ok         bool
	}{
		{"stored line", "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", 34.068930, -118.445127, true},
		{"tabs and line ending", "AT\tHands  -0.000000001 k\t-1.5+2 1\r\n", -1.5, 2, true},
		{"long location", "AT A +0.000000000 k +34.0689300000000000000000000000000000001-118.445127 1", 34.06893, -118.445127, true},
		{"tombstone", "DEL Goloman 1621464827.959498503 kiwi.cs.ucla.edu", 0, 0, false},
		{"not AT", "ATX Goloman +0.263873386 kiwi +34.068930-118.445127 1", 0, 0, false},
		{"five fields", "AT Goloman +0.263873386 kiwi +34.068930-118.445127", 0, 0, false},
		{"seven fields", "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1 x", 0, 0, false},
		{"bad location", "AT Goloman +0.263873386 kiwi +91-118.445127 1", 0, 0, false},
		{"empty", "", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lat, lng, ok := ATLocation(tc.line)
			if ok != tc.ok || lat != tc.lat || lng != tc.lng {
				t.Errorf("got %v %v %v, want %v %v %v", lat, lng, ok, tc.lat, tc.lng, tc.ok)
			}
			if !tc.ok {
				return
			}
			at, err := ParseAT([]byte(tc.line))
			if err != nil || at.Lat != lat || at.Lng != lng {
				t.Errorf("ParseAT gives %v %v (%v)", at.Lat, at.Lng, err)
			}
		})
	}
}

func TestATLocationDoesNotAllocate(t *testing.T) {
	line := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	if n := testing.AllocsPerRun(100, func() { ATLocation(line) }); n != 0 {
		t.Errorf("ATLocation allocated %v times per run", n)
	}
}

// The WHATSAT path before ATLocation: the stored line copied and parsed
// whole.
func BenchmarkParseStoredAT(b *testing.B) {
	line := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAT([]byte(line)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkATLocation(b *testing.B) {
	line := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := ATLocation(line); !ok {
			b.Fatal("not ok")
		}
	}
}
