package bench

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: nanoseconds from 1 ns to 100 s, 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(100 * time.Second)
	histDigits  = 3
)

// newHistogram returns an empty latency histogram in nanoseconds.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Percentiles are latencies, in nanoseconds, read from an HDR histogram
// (3 significant digits).
type Percentiles struct {
	Count int64   `json:"count"` // values recorded
	Min   int64   `json:"min"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99.9"`
	Max   int64   `json:"max"`
}

// PercentilesOf reads the reported percentiles of h. An empty histogram
// gives all zeros.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

// Error kinds counted in Result.ErrorKinds.
const (
	// KindWrongReply is a reply that breaks the protocol.
	KindWrongReply = "wrong reply"
	// KindIO is a failed connect, write or read other than a timeout.
	KindIO = "io"
	// KindTimeout is a request that got no whole reply within Options.Timeout.
	KindTimeout = "timeout"
	// KindAbandoned is a request in flight on a pipelined connection that was
	// closed because of another request's error.
	KindAbandoned = "abandoned"
	// KindNotPropagated is a propagation sample whose update never showed.
	KindNotPropagated = "not propagated"
)

// maxSamples is how many distinct error messages are kept per kind.
const maxSamples = 3

// recorder collects the outcome of every request of one run; its methods
// are safe for concurrent use. Workers record latencies through a shard.
type recorder struct {
	ok, failed atomic.Int64 // requests answered correctly / counted as errors

	mu      sync.Mutex
	hist    *hdrhistogram.Histogram // guarded by mu
	lag     *hdrhistogram.Histogram // guarded by mu: open-loop send lag
	kinds   map[string]int64        // guarded by mu
	samples map[string][]string     // guarded by mu
	status  map[string]int64        // guarded by mu: places status of WHATSAT replies
	polls   int64                   // guarded by mu: propagation polls
}

func newRecorder() *recorder {
	return &recorder{
		hist: newHistogram(), lag: newHistogram(),
		kinds: map[string]int64{}, samples: map[string][]string{}, status: map[string]int64{},
	}
}

// fail counts one failed request (n > 1: several lost together).
func (r *recorder) fail(kind string, err error, n int64) {
	if n <= 0 {
		return
	}
	r.failed.Add(n)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds[kind] += n
	msg := err.Error()
	s := r.samples[kind]
	if len(s) < maxSamples {
		for _, m := range s {
			if m == msg {
				return
			}
		}
		r.samples[kind] = append(s, msg)
	}
}

// failErr counts err with the kind it is.
func (r *recorder) failErr(err error) {
	var wr *wrongReply
	switch {
	case errors.As(err, &wr):
		r.fail(KindWrongReply, err, 1)
	case isTimeout(err):
		r.fail(KindTimeout, err, 1)
	default:
		r.fail(KindIO, err, 1)
	}
}

// shard is one worker's buffer of latencies, merged into the recorder's
// histogram in batches so workers rarely contend. Not safe for concurrent use.
type shard struct {
	r      *recorder
	lat    []int64
	lag    []int64
	status map[string]int64
	polls  int64
}

const shardBatch = 512

func (r *recorder) shard() *shard {
	return &shard{r: r, lat: make([]int64, 0, shardBatch), status: map[string]int64{}}
}

// ok records a good reply that took d.
func (s *shard) ok(d time.Duration) {
	s.r.ok.Add(1)
	s.lat = append(s.lat, int64(d))
	if len(s.lat) == cap(s.lat) {
		s.flush()
	}
}

// sendLag records how late an open-loop request was sent.
func (s *shard) sendLag(d time.Duration) {
	s.lag = append(s.lag, int64(d))
	if len(s.lag) >= shardBatch {
		s.flush()
	}
}

// flush merges the shard into the recorder.
func (s *shard) flush() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, v := range s.lat {
		s.r.hist.RecordValue(clampLatency(v))
	}
	for _, v := range s.lag {
		s.r.lag.RecordValue(clampLatency(v))
	}
	for k, n := range s.status {
		s.r.status[k] += n
		delete(s.status, k)
	}
	s.r.polls += s.polls
	s.polls = 0
	s.lat, s.lag = s.lat[:0], s.lag[:0]
}

func clampLatency(v int64) int64 {
	return min(max(v, 0), histHighest)
}

// snapshot returns the counters for a progress line.
func (r *recorder) snapshot() (ok, failed int64) { return r.ok.Load(), r.failed.Load() }

// result fills the counting part of res.
func (r *recorder) result(res *Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.OK, res.Errors = r.ok.Load(), r.failed.Load()
	res.Requests = res.OK + res.Errors
	res.Latency = PercentilesOf(r.hist)
	res.hist = r.hist
	if r.lag.TotalCount() > 0 {
		p := PercentilesOf(r.lag)
		res.SendLag = &p
	}
	res.ErrorKinds = map[string]int64{}
	for k, n := range r.kinds {
		res.ErrorKinds[k] = n
	}
	kinds := make([]string, 0, len(r.samples))
	for k := range r.samples {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	res.ErrorSamples = []string{}
	for _, k := range kinds {
		for _, m := range r.samples[k] {
			res.ErrorSamples = append(res.ErrorSamples, k+": "+m)
		}
	}
	if len(r.status) > 0 {
		res.PlacesStatus = map[string]int64{}
		for k, n := range r.status {
			res.PlacesStatus[k] = n
		}
	}
	if r.polls > 0 && res.OK > 0 {
		res.PollsPerSample = float64(r.polls) / float64(res.OK)
	}
}
