package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Peer holds the TLS credentials of one server's peer links: the CA pool
// that every neighbour's certificate must chain to, and this server's own
// certificate and key. It is safe for concurrent use.
//
// The ca_file may hold several PEM certificates; all of them are trusted.
// That is how a CA is rolled over without downtime: put the old and the new
// CA in ca_file on every server, re-issue each server's certificate from
// the new CA, then drop the old CA from ca_file.
//
// A Peer re-reads its three files when one of them changes (looked at, at
// most once a second, whenever a handshake, ClientConfig or NotAfter needs
// them). A
// change that does not load (a missing file, a key that does not match its
// certificate yet) keeps the last good load in use and is retried on the
// next look; Err reports it.
type Peer struct {
	r *reloader[*peerMaterial]
}

// peerMaterial is one good load of a Peer's files; immutable.
type peerMaterial struct {
	cert   *tls.Certificate
	pool   *x509.CertPool
	server *tls.Config // what ServerConfig hands to each handshake
}

// NewPeer loads caFile, certFile and keyFile (paths with {name} already
// expanded, see Expand) and checks them: each file must exist and be PEM,
// the key must match the certificate, and the certificate must be
// currently valid and signed by a CA of caFile for both server and client
// authentication. Errors name the setting and the file.
func NewPeer(caFile, certFile, keyFile string) (*Peer, error) {
	return newPeer(caFile, certFile, keyFile, time.Now)
}

func newPeer(caFile, certFile, keyFile string, now func() time.Time) (*Peer, error) {
	load := func(t time.Time) (*peerMaterial, error) {
		return loadPeer(caFile, certFile, keyFile, t)
	}
	r, err := newReloader([]string{caFile, certFile, keyFile}, load, now)
	if err != nil {
		return nil, err
	}
	return &Peer{r: r}, nil
}

func loadPeer(caFile, certFile, keyFile string, now time.Time) (*peerMaterial, error) {
	cas, err := readCerts("ca_file", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for i, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("ca_file %s: certificate %d (%s) is not a CA", caFile, i+1, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	cert, err := loadKeyPair(certFile, keyFile, now)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
		var ua x509.UnknownAuthorityError
		switch {
		case errors.As(err, &ua):
			return nil, fmt.Errorf("cert_file %s: not signed by a CA in ca_file %s", certFile, caFile)
		case err != nil:
			return nil, fmt.Errorf("cert_file %s: %w", certFile, err)
		}
	}
	m := &peerMaterial{cert: cert, pool: pool}
	m.server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// A resumed session would skip verification against the CA pool
		// as it is now, so a CA dropped in a rollover would still be let
		// in; peer links are long-lived, a full handshake costs little.
		SessionTicketsDisabled: true,
	}
	return m, nil
}

// loadKeyPair reads a certificate and its key and checks that they match
// and that the certificate is valid at now.
func loadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	if _, err := readCerts("cert_file", certFile); err != nil {
		return nil, err
	}
	if _, err := readKey("key_file", keyFile); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file %s does not match cert_file %s: %w", keyFile, certFile, err)
	}
	leaf := cert.Leaf
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("cert_file %s: expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("cert_file %s: not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// ServerConfig returns the tls.Config for accepting peer links: TLS 1.3
// only, and a client certificate required and verified against the CA
// pool. Each handshake uses the files as last loaded, so one config serves
// across rotations. After the handshake the acceptor must still check the
// name the peer claims with PeerName, and that it is a configured
// neighbour.
func (p *Peer) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return p.r.get().server, nil
		},
	}
}

// ClientConfig returns the tls.Config for dialing the neighbour
// peerName: TLS 1.3 only, the neighbour's certificate verified against the
// CA pool and required to carry peerName as a DNS SAN (exactly, see
// PeerName), and this server's certificate offered. The CA pool is the one
// loaded when ClientConfig is called, so call it for each dial.
func (p *Peer) ClientConfig(peerName string) *tls.Config {
	m := p.r.get()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: peerName,
		RootCAs:    m.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return p.r.get().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return PeerName(cs, peerName)
		},
	}
}

// NotAfter returns when this server's current certificate expires.
func (p *Peer) NotAfter() time.Time {
	return p.r.get().cert.Leaf.NotAfter
}

// CheckName returns an error unless this server's current certificate
// carries name as a DNS SAN; a server checks its own name at start so a
// certificate issued for another server is caught before any link.
func (p *Peer) CheckName(name string) error {
	leaf := p.r.get().cert.Leaf
	if slices.Contains(leaf.DNSNames, name) {
		return nil
	}
	return fmt.Errorf("own certificate is for %s, not %q", describeNames(leaf), name)
}

// Reload re-reads the files now if one changed, without waiting for the
// once-a-second look, and returns the error of a load that failed (the
// last good load stays in use).
func (p *Peer) Reload() error { return p.r.reload() }

// Err returns the error of the last reload that failed, or nil if the
// files in use are the latest ones.
func (p *Peer) Err() error { return p.r.lastErr() }

// PeerName checks that the verified certificate of a TLS connection's peer
// carries claimed, exactly, as a DNS SAN. It fails when the connection
// has no verified certificate. Errors say what was expected and which
// names the certificate has.
func PeerName(cs tls.ConnectionState, claimed string) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return fmt.Errorf("peer %q: no verified certificate", claimed)
	}
	leaf := cs.VerifiedChains[0][0]
	if slices.Contains(leaf.DNSNames, claimed) {
		return nil
	}
	return fmt.Errorf("peer claims to be %q but its certificate is for %s", claimed, describeNames(leaf))
}

func describeNames(c *x509.Certificate) string {
	if len(c.DNSNames) == 0 {
		return "no DNS name"
	}
	q := make([]string, len(c.DNSNames))
	for i, n := range c.DNSNames {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
