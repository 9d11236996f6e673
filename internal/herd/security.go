package herd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"herd/internal/config"
	"herd/internal/peer"
	"herd/internal/pki"
)

// certWarnAhead is how long before its peer certificate expires a server
// starts warning.
const certWarnAhead = 30 * 24 * time.Hour

// peerAuth returns how the member called name authenticates its links:
// mutual TLS when the config has [peer.tls], else the shared secrets, else
// protected (or insecure) mode. It also returns when the member's peer
// certificate expires (zero without TLS).
func (h *Herd) peerAuth(name string) (peer.Auth, time.Time, error) {
	a := peer.Auth{Secrets: h.o.Secrets, Insecure: h.cfg.Insecure}
	t := h.cfg.Peer.TLS
	if !t.On() {
		return a, time.Time{}, nil
	}
	t = t.Expand(name)
	p, err := pki.NewPeer(t.CAFile, t.CertFile, t.KeyFile)
	if err != nil {
		return a, time.Time{}, fmt.Errorf("[peer.tls]: %w", err)
	}
	if err := p.CheckName(name); err != nil {
		return a, time.Time{}, fmt.Errorf("[peer.tls]: %w", err)
	}
	a.TLS = p
	return a, p.NotAfter(), nil
}

// listenerTLS returns the TLS settings of a member's listener that
// presents the certificate of t (section names it in errors:
// "[client.tls]", "[http.tls]"), or nil when t is not set.
func listenerTLS(section string, t config.TLSFiles, name string) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	t = t.Expand(name)
	kp, err := pki.NewKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	return kp.ServerConfig(), nil
}

// warnAuth says at start how links are authenticated, loudly when they are
// not, and warns of a peer certificate that expires soon.
func warnAuth(logger, progress *slog.Logger, a peer.Auth, certExpiry time.Time) {
	switch a.Mode() {
	case "insecure":
		msg := "INSECURE: peer links are not authenticated and accepted from any address (insecure = true): anyone who can reach this server can read and change every location"
		logger.Warn(msg)
		progress.Warn(msg)
	case "protected":
		logger.Info("peer links: no credential configured, accepting peers from loopback addresses only")
	default:
		logger.Info("peer links authenticated", "auth", a.Mode())
	}
	if !certExpiry.IsZero() {
		if left := time.Until(certExpiry); left < certWarnAhead {
			msg := fmt.Sprintf("peer certificate expires in %s (%s): issue a new one with `herd certs`", left.Round(time.Hour), certExpiry.Format(time.RFC3339))
			logger.Warn(msg)
			progress.Warn(msg)
		}
	}
}
