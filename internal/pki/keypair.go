package pki

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// KeyPair is a server certificate and key for a client listener
// ([client.tls]): the server proves who it is, clients present no
// certificate. Like Peer, it re-reads its files when they change, at most
// once a second, and keeps the last good load on a bad read. It is safe
// for concurrent use.
type KeyPair struct {
	r *reloader[*tls.Certificate]
}

// NewKeyPair loads certFile and keyFile ({name} already expanded) and
// checks that both are PEM, that the key matches the certificate, and
// that the certificate is currently valid. Any issuer is accepted,
// self-signed included: clients decide whom they trust.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	return newKeyPair(certFile, keyFile, time.Now)
}

func newKeyPair(certFile, keyFile string, now func() time.Time) (*KeyPair, error) {
	load := func(t time.Time) (*tls.Certificate, error) { return loadKeyPair(certFile, keyFile, t) }
	r, err := newReloader([]string{certFile, keyFile}, load, now)
	if err != nil {
		return nil, err
	}
	return &KeyPair{r: r}, nil
}

// ServerConfig returns the tls.Config of a client listener: TLS 1.2 or
// later (clients are not all Go), no client certificate asked for, and
// the certificate as last loaded for each handshake.
func (k *KeyPair) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return k.r.get(), nil
		},
	}
}

// NotAfter returns when the current certificate expires.
func (k *KeyPair) NotAfter() time.Time { return k.r.get().Leaf.NotAfter }

// Reload re-reads the files now if one changed and returns the error of a
// load that failed (the last good load stays in use).
func (k *KeyPair) Reload() error { return k.r.reload() }

// Err returns the error of the last reload that failed, or nil.
func (k *KeyPair) Err() error { return k.r.lastErr() }

// DialConfig returns the tls.Config for `herd client -tls`: the server's
// certificate is verified for serverName (a DNS name or an IP address,
// usually the host part of the address dialed) against the CAs in caFile,
// or against the system's roots when caFile is empty.
func DialConfig(caFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile == "" {
		return c, nil
	}
	cas, err := readCerts("CA file", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	c.RootCAs = pool
	return c, nil
}
