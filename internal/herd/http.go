package herd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"herd/internal/config"
	"herd/internal/httpapi"
)

// loadTokens reads [http] tokens_file, if the config has one.
func loadTokens(cfg *config.Config) (*httpapi.Tokens, error) {
	if cfg.HTTP.TokensFile == "" {
		return nil, nil
	}
	t, err := httpapi.LoadTokens(cfg.HTTP.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("[http] %w", err)
	}
	return t, nil
}

// ReloadTokens re-reads [http] tokens_file for every member (SIGHUP); on
// an error the tokens in use stay.
func (h *Herd) ReloadTokens() error {
	if h.tokens == nil {
		return nil
	}
	return h.tokens.Reload()
}

// startHTTP serves the member's HTTP API on ln: the same server, table,
// store and flood as its client listener.
func (m *Member) startHTTP(ln net.Listener, tlsConfig *tls.Config, logger *slog.Logger) {
	o := httpapi.Options{
		Backend: m.Server, Tokens: m.h.tokens, MaxBodyBytes: m.h.cfg.HTTP.BodyLimit(),
		Logger: logger, Registerer: m.Metrics.Registry(), ServerName: m.Name,
		Index: m.Index, Live: m.Live, Sync: m.syncIndex,
	}
	if f := m.h.o.HTTPOptions; f != nil {
		f(m.Name, &o)
	}
	api := httpapi.New(o)
	m.HTTPAddr = ln.Addr().String()
	m.api = httpapi.NewServer(api, tlsConfig, logger.With("listener", "http"))
	m.api.RegisterOnShutdown(api.StopStreams) // streams end, so that requests in flight can finish
	go func() {
		var err error
		if tlsConfig != nil {
			err = m.api.ServeTLS(ln, "", "")
		} else {
			err = m.api.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http listener failed", "addr", m.HTTPAddr, "err", err.Error())
		}
	}()
}
