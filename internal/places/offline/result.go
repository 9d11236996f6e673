package offline

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Data credits for html_attributions, as JSON strings.
var (
	creditGeoNames    = json.RawMessage(`"<a href=\"https://www.geonames.org/\">GeoNames</a> (CC BY 4.0)"`)
	creditOpenFlights = json.RawMessage(`"<a href=\"https://openflights.org/data.html\">OpenFlights</a> (ODbL 1.0)"`)
)

// Fixed members of every result, Google's generic geocode icon.
const (
	iconURL         = "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png"
	iconBackground  = "#7B9EB0"
	iconMaskBaseURI = "https://maps.gstatic.com/mapfiles/place_api/icons/v2/generic_pinlet"
)

// appendResult appends p as a legacy Nearby Search result object, keys in
// alphabetical order.
func (x *Index) appendResult(b []byte, p *place) []byte {
	ne, sw := viewport(float64(p.lat)/1e5, float64(p.lon)/1e5, p)

	b = append(b, `{"geometry":{"location":{"lat":`...)
	b = appendFixed(b, int64(p.lat), 5)
	b = append(b, `,"lng":`...)
	b = appendFixed(b, int64(p.lon), 5)
	b = append(b, `},"viewport":{"northeast":{"lat":`...)
	b = appendFixed(b, ne[0], 7)
	b = append(b, `,"lng":`...)
	b = appendFixed(b, ne[1], 7)
	b = append(b, `},"southwest":{"lat":`...)
	b = appendFixed(b, sw[0], 7)
	b = append(b, `,"lng":`...)
	b = appendFixed(b, sw[1], 7)
	b = append(b, `}}},"icon":"`+iconURL+`","icon_background_color":"`+iconBackground+
		`","icon_mask_base_uri":"`+iconMaskBaseURI+`","name":`...)
	b = appendString(b, x.names[p.nameOff:p.nameOff+uint32(p.nameLen)])

	prefix, types := `"geonames:`, `["locality","political"]`
	switch p.kind {
	case kindAirport:
		prefix, types = `"openflights:`, `["airport","point_of_interest","establishment"]`
	case kindNeighborhood:
		types = `["neighborhood","political"]`
	}
	b = append(b, `,"place_id":`...)
	b = append(b, prefix...)
	b = strconv.AppendUint(b, uint64(p.id), 10)
	b = append(b, `","reference":`...)
	b = append(b, prefix...)
	b = strconv.AppendUint(b, uint64(p.id), 10)
	b = append(b, `","scope":"APP","types":`...)
	b = append(b, types...)
	b = append(b, `,"vicinity":`...)
	b = appendString(b, x.vicinity[p.vic])
	return append(b, '}')
}

// viewport returns the north-east and south-west corners (lat, lng) of a
// square box around the place, sized as the package doc says, in units of
// 1e-7 degree.
func viewport(lat, lng float64, p *place) (ne, sw [2]int64) {
	var half float64 // metres
	switch p.kind {
	case kindNeighborhood:
		half = 1500
	case kindAirport:
		half = 2000
	default:
		half = min(1000+15*math.Sqrt(float64(p.pop)), 25_000)
	}
	dlat := half / earthRadiusM * 180 / math.Pi
	dlng := 180.0
	if c := math.Cos(lat * math.Pi / 180); c > 0 {
		dlng = min(dlat/c, 180)
	}
	ne[0], sw[0] = e7(min(lat+dlat, 90)), e7(max(lat-dlat, -90))
	if dlng >= 180 {
		ne[1], sw[1] = 180e7, -180e7
	} else {
		ne[1], sw[1] = e7(wrapLng(lng+dlng)), e7(wrapLng(lng-dlng))
	}
	return ne, sw
}

func wrapLng(v float64) float64 {
	switch {
	case v > 180:
		return v - 360
	case v < -180:
		return v + 360
	}
	return v
}

func e7(v float64) int64 { return int64(math.Round(v * 1e7)) }

// appendFixed appends v × 10^-decimals as a JSON number, without trailing
// zeros, as strconv.AppendFloat(b, v/10^decimals, 'f', -1, 64) would.
func appendFixed(b []byte, v int64, decimals int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var digits [24]byte
	d := strconv.AppendUint(digits[:0], uint64(v), 10)
	if pad := decimals + 1 - len(d); pad > 0 { // at least one digit before the point
		var padded [48]byte
		for i := range pad {
			padded[i] = '0'
		}
		d = append(padded[:pad], d...)
	}
	intPart, frac := d[:len(d)-decimals], d[len(d)-decimals:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	b = append(b, intPart...)
	if len(frac) > 0 {
		b = append(b, '.')
		b = append(b, frac...)
	}
	return b
}

// appendString appends s as a JSON string. Non-ASCII text is kept as UTF-8;
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
