package httpapi

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// Timeouts of the HTTP listener. A places lookup is bounded by the places
// timeout (10 s at most by default), within WriteTimeout.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// NewServer returns the http.Server of a member's http listener, with the
// timeouts above and net/http's own errors (failed TLS handshakes and the
// like) logged to logger; tlsConfig, if not nil, makes it speak HTTPS only. Serve
// it with Serve (which speaks TLS when tlsConfig is set); Shutdown stops
// accepting, lets requests in flight finish until its context is done, and
// closes idle keep-alive connections.
func NewServer(h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelInfo),
	}
}
