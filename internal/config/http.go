package config

import "fmt"

// HTTPConfig holds the settings shared by every server's http listener
// (`[[server]] http = "HOST:PORT"`).
type HTTPConfig struct {
	// TokensFile lists the tokens of the HTTP API and what each may write
	// and read; empty: everything is allowed, and every http listener must
	// be on a loopback address.
	TokensFile string `toml:"tokens_file"`
	// MaxBodyBytes bounds a request body (413 over it); 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// TLS, when set (cert_file and key_file, {name} allowed), makes every
	// http listener speak HTTPS.
	TLS TLSFiles `toml:"tls"`
}

// DefaultMaxBodyBytes is the default [http] max_body_bytes.
const DefaultMaxBodyBytes = 1 << 20

// BodyLimit returns max_body_bytes, or its default when unset.
func (h HTTPConfig) BodyLimit() int64 {
	if h.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return h.MaxBodyBytes
}

// validateHTTP checks [http] and the http listeners: the TLS files come in
// pairs, the body limit is positive, and without a tokens file every http
// listener is a loopback address (protected mode).
func (c *Config) validateHTTP(fail func(key, format string, args ...any) error) error {
	h := c.HTTP
	if h.MaxBodyBytes < 0 {
		return fail("http.max_body_bytes", "%d out of range: want a positive number of bytes (default %d)", h.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if h.TLS.On() {
		if err := h.TLS.checkServerSide("http.tls", "HTTP clients", fail); err != nil {
			return err
		}
	}
	return c.HTTPUnprotected()
}

// HTTPUnprotected returns an error naming the first http listener on a
// non-loopback address while [http] has no tokens_file: without tokens
// anyone who reaches it could read and change every location.
func (c *Config) HTTPUnprotected() error {
	if c.HTTP.TokensFile != "" {
		return nil
	}
	for i, s := range c.Servers {
		if s.HTTP == "" || IsLoopback(s.HTTP) {
			continue
		}
		return fmt.Errorf("%s: server[%d].http: %s listens on %s, which is not a loopback address, and [http] has no tokens_file: "+
			"anyone who can reach it could read and change every location; set [http] tokens_file (see docs/HTTP.md) or listen on 127.0.0.1",
			c.Source(), i, s.Name, s.HTTP)
	}
	return nil
}
