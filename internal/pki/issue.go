package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Validity of what LoadOrCreateCA and CA.IssueServer make.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour // the CA's certificate
	ServerValidity = 825 * 24 * time.Hour      // each server's certificate
)

// backdate is subtracted from NotBefore so a neighbour whose clock is a
// little behind still accepts a certificate issued just now.
const backdate = 5 * time.Minute

// File names of the CA inside an issuance directory.
const (
	CACertFile = "ca.crt" // the CA certificate, to give every server (ca_file)
	CAKeyFile  = "ca.key" // the CA key, mode 0600, kept where herd certs runs
)

// FileResult says what issuance did with one file.
type FileResult struct {
	Path    string // the file, as dir joined with its name
	Written bool   // true: written now; false: already there and kept
}

// CA is a certificate authority that signs the certificates of a herd.
type CA struct {
	Cert *x509.Certificate // the CA's self-signed certificate
	key  crypto.Signer
}

// LoadOrCreateCA returns the CA in dir (ca.crt and ca.key), making it
// first when dir has neither: an ECDSA P-256 key written with mode 0600
// and a self-signed certificate valid for CAValidity. dir is created
// (mode 0700) if missing. An existing CA is reused as it is. If ca.key
// exists without ca.crt, a new certificate is made for that key; if
// ca.crt exists without ca.key, it is an error, since nothing can be
// signed and the key is never replaced.
func LoadOrCreateCA(dir string) (*CA, []FileResult, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("make %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certExists, err := exists(certPath)
	if err != nil {
		return nil, nil, err
	}
	if keyExists, err := exists(keyPath); err != nil {
		return nil, nil, err
	} else if certExists && !keyExists {
		return nil, nil, fmt.Errorf("%s exists without %s: restore the CA key, or move %s away to make a new CA", certPath, keyPath, certPath)
	}
	key, keyRes, err := loadOrCreateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if certExists {
		certs, err := readCerts("CA certificate", certPath)
		if err != nil {
			return nil, nil, err
		}
		ca := &CA{Cert: certs[0], key: key}
		if !publicKeysEqual(ca.Cert.PublicKey, key.Public()) {
			return nil, nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
		}
		if !ca.Cert.IsCA {
			return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
		}
		return ca, []FileResult{keyRes, {Path: certPath}}, nil
	}
	now := time.Now()
	cert, der, err := newCACert(key, now.Add(-backdate), now.Add(CAValidity))
	if err != nil {
		return nil, nil, err
	}
	if err := writeFile(certPath, pemCert(der), 0o644, false); err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, key: key}, []FileResult{keyRes, {Path: certPath, Written: true}}, nil
}

// exists reports whether path exists; other stat errors are returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}

func newCACert(key crypto.Signer, notBefore, notAfter time.Time) (*x509.Certificate, []byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "herd CA", Organization: []string{"herd"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("make CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return cert, der, nil
}

// IssueServer gives the server name a key and certificate in dir:
// <name>.key (ECDSA P-256, mode 0600, made only if missing: an existing
// key is reused) and <name>.crt (always written fresh, valid for
// ServerValidity). The certificate carries name as a DNS SAN, and each of
// hosts as an IP SAN (if it parses as one) or a DNS SAN, so clients can
// verify a server by address; it is good for both ServerAuth and
// ClientAuth. hosts must not contain another server's name, or that
// server could be impersonated. Unspecified addresses (0.0.0.0, ::) and
// empty hosts are skipped.
func (ca *CA) IssueServer(dir, name string, hosts []string) ([]FileResult, error) {
	now := time.Now()
	return ca.issueServer(dir, name, hosts, now.Add(-backdate), now.Add(ServerValidity))
}

func (ca *CA) issueServer(dir, name string, hosts []string, notBefore, notAfter time.Time) ([]FileResult, error) {
	if name == "" {
		return nil, errors.New("issue certificate: empty server name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	keyPath, certPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
	key, keyRes, err := loadOrCreateKey(keyPath)
	if err != nil {
		return nil, err
	}
	der, err := ca.sign(name, key.Public(), hosts, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	if err := writeFile(certPath, pemCert(der), 0o644, false); err != nil {
		return nil, err
	}
	return []FileResult{keyRes, {Path: certPath, Written: true}}, nil
}

// sign makes a server certificate for pub.
func (ca *CA) sign(name string, pub crypto.PublicKey, hosts []string, notBefore, notAfter time.Time) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"herd"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", name, err)
	}
	return der, nil
}

// loadOrCreateKey returns the private key in path, or makes one (ECDSA
// P-256, mode 0600) when path does not exist. It never replaces a file.
func loadOrCreateKey(path string) (crypto.Signer, FileResult, error) {
	if ok, err := exists(path); err != nil {
		return nil, FileResult{}, err
	} else if ok {
		key, err := readKey("key", path)
		return key, FileResult{Path: path}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, FileResult{}, fmt.Errorf("make key %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, FileResult{}, fmt.Errorf("encode key %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFile(path, data, 0o600, true); err != nil {
		return nil, FileResult{}, err
	}
	return key, FileResult{Path: path, Written: true}, nil
}

// readKey parses the first private key block of file (PKCS #8, SEC 1 or
// PKCS #1).
func readKey(role, file string) (crypto.Signer, error) {
	blocks, err := readPEM(role, file)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		var k any
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", role, file, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s %s: unsupported key type %T", role, file, k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s %s: not PEM: no PRIVATE KEY block", role, file)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("make serial number: %w", err)
	}
	return n, nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
