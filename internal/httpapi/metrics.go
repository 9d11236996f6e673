package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts and times requests by route (the mux pattern, or
// "unmatched").
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	nearby   prometheus.Histogram // time to run a nearby query (index and records)
	streams  prometheus.Gauge     // open streams
	sent     prometheus.Counter   // events written to streams
	dropped  prometheus.Counter   // events a cut-off stream did not get
	cutOff   prometheus.Counter   // streams cut off for not keeping up
}

func newHTTPMetrics(serverName string) *httpMetrics {
	labels := prometheus.Labels{}
	if serverName != "" {
		labels["server"] = serverName
	}
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_http_requests_total", Help: "HTTP API requests by route and status code.", ConstLabels: labels,
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herd_http_request_duration_seconds", Help: "Time to answer an HTTP API request, by route.", ConstLabels: labels,
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		nearby: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herd_nearby_query_duration_seconds", Help: "Time to answer a nearby query from the spatial index.", ConstLabels: labels,
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, .1},
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herd_streams_open", Help: "Open event streams (GET /v1/stream).", ConstLabels: labels,
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herd_stream_events_sent_total", Help: "Events written to streams.", ConstLabels: labels,
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herd_stream_events_dropped_total", Help: "Events streams did not get because they were cut off for not keeping up.", ConstLabels: labels,
		}),
		cutOff: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herd_streams_cut_off_total", Help: "Streams cut off because their consumer did not keep up.", ConstLabels: labels,
		}),
	}
}

func (m *httpMetrics) register(r prometheus.Registerer) {
	r.MustRegister(m.requests, m.duration, m.nearby, m.streams, m.sent, m.dropped, m.cutOff)
}

// init makes the route's duration series exist before its first request.
func (m *httpMetrics) init(route string) { m.duration.WithLabelValues(route) }

func (m *httpMetrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
