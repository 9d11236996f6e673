package bench

import (
	"strconv"
	"strings"
)

// Workload names what a run sends.
type Workload string

// The workloads.
const (
	// IAMAT sends only IAMAT lines.
	IAMAT Workload = "iamat"
	// WHATSAT sends only WHATSAT lines, about clients reported before the run.
	WHATSAT Workload = "whatsat"
	// Mix sends IAMAT with probability Options.MixIAMAT, else WHATSAT.
	Mix Workload = "mix"
	// Propagation reports a location at one server and times how long
	// another server takes to answer a WHATSAT with it.
	Propagation Workload = "propagation"
	// Redis sends the same update as IAMAT to a Redis server instead of a
	// herd: the inline command "GEOADD herd <lng> <lat> <client>", answered
	// ":1" (a new member) or ":0" (a member moved). It measures what a
	// Redis GEO set costs with the same client and load. Each GEOADD moves
	// its member to another of the generator's locations: one that changes
	// nothing is neither written to the append-only file nor sent to
	// replicas, and would measure neither.
	Redis Workload = "redis"
)

// Workloads lists the valid workloads, in the order the help shows them.
var Workloads = []Workload{IAMAT, WHATSAT, Mix, Propagation, Redis}

// redisKey is the set every GEOADD adds to.
const redisKey = "herd"

// redisLngLat are locations as GEOADD takes them: longitude, then latitude.
var redisLngLat = func() []string {
	out := make([]string, len(locations))
	for i, l := range locations {
		split := 1 + strings.IndexAny(l[1:], "+-")
		out[i] = strings.TrimPrefix(l[split:], "+") + " " + strings.TrimPrefix(l[:split], "+")
	}
	return out
}()

// needsWhatsat reports whether w sends WHATSAT lines.
func (w Workload) needsWhatsat() bool { return w == WHATSAT || w == Mix || w == Propagation }

// locations are the positions the generator reports, all of the same length
// so that every IAMAT of a run has the same size.
var locations = []string{
	"+34.068930-118.445127", // UCLA
	"+34.072330-118.441520",
	"+34.063710-118.448190",
	"+34.070380-118.439430",
	"+34.066580-118.451170",
	"+34.061950-118.444630",
	"+34.074240-118.446820",
	"+34.067420-118.437960",
}

// timeLen is the longest time field the generator writes: 10 digits of
// seconds (until 2286), a dot and 9 digits.
const timeLen = 20

// request is one command sent, with what its reply must contain.
type request struct {
	whatsat bool
	redis   bool // a GEOADD: the reply is ":0" or ":1"
	client  string
	loc     string        // IAMAT only
	tm      [timeLen]byte // IAMAT only: the time field is tm[:tmLen]
	tmLen   uint8
	line    string // WHATSAT only: the line without its LF, to check a "?" reply
}

// timeField returns the IAMAT time field as sent.
func (r *request) timeField() []byte { return r.tm[:r.tmLen] }

// generator writes the command lines of one worker. It is not safe for
// concurrent use.
type generator struct {
	workload Workload
	mixIAMAT float64
	clients  []string // the client ids this worker reports and asks about
	queries  []string // queries[i]: the WHATSAT line about clients[i], without LF
	next     int      // index into clients of the next IAMAT
	round    int      // Redis: times next went round, so a client's location changes each time
	nextQ    int      // index into clients of the next WHATSAT
	last     int64    // UnixNano of the last time field sent: times strictly increase
	rng      uint64   // xorshift state for Mix
	radius   string
	bound    string
	now      func() int64
}

// newGenerator returns the generator of worker w of conns: it owns the
// client ids i < clients with i % conns == w, so that no two workers race
// on one client's newer-wins record.
func newGenerator(o *Options, w int) *generator {
	g := &generator{
		workload: o.Workload,
		mixIAMAT: o.MixIAMAT,
		radius:   o.Radius,
		bound:    strconv.Itoa(o.Bound),
		rng:      uint64(w)*0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D,
		now:      nowNano,
	}
	for i := w; i < o.Clients; i += o.Conns {
		g.clients = append(g.clients, o.RunID+"."+strconv.Itoa(i))
	}
	if len(g.clients) == 0 { // withDefaults gives every worker a client; stay safe anyway
		g.clients = []string{o.RunID + "." + strconv.Itoa(w)}
	}
	if o.Workload == WHATSAT || o.Workload == Mix {
		for _, c := range g.clients {
			g.queries = append(g.queries, "WHATSAT "+c+" "+g.radius+" "+g.bound)
		}
	}
	return g
}

// rand returns a pseudo-random float in [0, 1).
func (g *generator) rand() float64 {
	g.rng ^= g.rng << 13
	g.rng ^= g.rng >> 7
	g.rng ^= g.rng << 17
	return float64(g.rng>>11) / (1 << 53)
}

// nextLine appends the next command line (with its LF) to buf.
func (g *generator) nextLine(buf []byte, req *request) []byte {
	switch g.workload {
	case WHATSAT:
		return g.whatsat(buf, req)
	case Redis:
		return g.geoadd(buf, req)
	case Mix:
		if g.rand() >= g.mixIAMAT {
			return g.whatsat(buf, req)
		}
	}
	client := g.clients[g.next]
	g.next = (g.next + 1) % len(g.clients)
	return g.iamat(buf, req, client, locations[g.next%len(locations)])
}

// iamat appends an IAMAT for client at loc with a time later than any sent
// before by this generator.
func (g *generator) iamat(buf []byte, req *request, client, loc string) []byte {
	t := g.now()
	if t <= g.last {
		t = g.last + 1
	}
	g.last = t
	*req = request{client: client, loc: loc}
	req.tmLen = uint8(len(appendTime(req.tm[:0], t)))
	buf = append(buf, "IAMAT "...)
	buf = append(buf, client...)
	buf = append(buf, ' ')
	buf = append(buf, loc...)
	buf = append(buf, ' ')
	buf = append(buf, req.timeField()...)
	return append(buf, '\n')
}

// geoadd appends "GEOADD herd <lng> <lat> <client>\r\n", an inline Redis
// command, for the next of the generator's clients, at a location other
// than the one it was given last time.
func (g *generator) geoadd(buf []byte, req *request) []byte {
	client := g.clients[g.next]
	loc := (g.next + g.round) % len(redisLngLat)
	if g.next++; g.next == len(g.clients) {
		g.next, g.round = 0, g.round+1
	}
	return appendGeoadd(buf, req, client, redisLngLat[loc])
}

// appendGeoadd appends the GEOADD of client at lngLat to buf and fills req.
func appendGeoadd(buf []byte, req *request, client, lngLat string) []byte {
	*req = request{redis: true, client: client}
	buf = append(buf, "GEOADD "+redisKey+" "...)
	buf = append(buf, lngLat...)
	buf = append(buf, ' ')
	buf = append(buf, client...)
	return append(buf, '\r', '\n')
}

// whatsat appends a WHATSAT about the next of the generator's clients.
func (g *generator) whatsat(buf []byte, req *request) []byte {
	i := g.nextQ
	g.nextQ = (i + 1) % len(g.clients)
	*req = request{whatsat: true, client: g.clients[i], line: g.queries[i]}
	buf = append(buf, g.queries[i]...)
	return append(buf, '\n')
}

// appendWhatsat appends "WHATSAT client radius bound\n" to buf and fills req.
func appendWhatsat(buf []byte, req *request, client, radius, bound string) []byte {
	start := len(buf)
	buf = append(buf, "WHATSAT "...)
	buf = append(buf, client...)
	buf = append(buf, ' ')
	buf = append(buf, radius...)
	buf = append(buf, ' ')
	buf = append(buf, bound...)
	*req = request{whatsat: true, client: client, line: string(buf[start:])}
	return append(buf, '\n')
}

// appendTime appends POSIX time t (nanoseconds) as seconds with 9
// fractional digits.
func appendTime(b []byte, t int64) []byte {
	b = strconv.AppendInt(b, t/1e9, 10)
	b = append(b, '.')
	ns := t % 1e9
	for d := int64(1e8); d > 0; d /= 10 {
		b = append(b, byte('0'+ns/d%10))
	}
	return b
}
