// Package tlsconf turns a listener's tls settings (cert_file, key_file,
// client_ca_file, min_version, alpn) into a *tls.Config for the loop's
// TLS termination, and refuses what could not serve: a missing or
// unreadable file, a key that does not match its certificate, an expired
// certificate, an unknown version. Every error names the setting and the
// file.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// maxFileSize bounds what a certificate, key or CA file may hold: a
// bundle of a few hundred certificates, and not /dev/zero.
const maxFileSize = 1 << 20

// Error is a problem with one setting of a tls block; Setting names it
// (cert_file, key_file, client_ca_file, min_version, alpn) so that a
// config file can place the message on its line.
type Error struct {
	Setting string
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// settingError is fmt.Errorf's error as an *Error of setting.
func settingError(setting, format string, args ...any) error {
	return &Error{Setting: setting, Err: fmt.Errorf(format, args...)}
}

// DefaultMinVersion is the oldest protocol version served when
// min_version is not set.
const DefaultMinVersion = tls.VersionTLS12

// versions are min_version's values.
var versions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

// ParseVersion parses a min_version value: "1.0" to "1.3"; "" is
// DefaultMinVersion.
func ParseVersion(s string) (uint16, error) {
	if s == "" {
		return DefaultMinVersion, nil
	}
	if v, ok := versions[s]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("min_version %q: want 1.0, 1.1, 1.2 or 1.3", s)
}

// CheckALPN reports an ALPN protocol name that cannot be sent.
func CheckALPN(p string) error {
	if p == "" || len(p) > 255 {
		return fmt.Errorf("protocol name %q: want 1 to 255 bytes", p)
	}
	return nil
}

// Load reads a certificate and its key, and with clientCAFile set the CAs
// whose client certificates are required (mutual TLS), and returns a
// server configuration. Session tickets are on (crypto/tls's default, with
// keys it rotates); the configuration must be shared by the handshakes it
// serves for them to resume. A problem with one setting comes back as an
// *Error naming it.
func Load(certFile, keyFile, clientCAFile, minVersion string, alpn []string) (*tls.Config, error) {
	return load(certFile, keyFile, clientCAFile, minVersion, alpn, time.Now())
}

func load(certFile, keyFile, clientCAFile, minVersion string, alpn []string, now time.Time) (*tls.Config, error) {
	min, err := ParseVersion(minVersion)
	if err != nil {
		return nil, settingError("min_version", "tls %w", err)
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are both required")
	}
	for _, p := range alpn {
		if err := CheckALPN(p); err != nil {
			return nil, settingError("alpn", "tls alpn %w", err)
		}
	}
	certPEM, err := readFile("cert_file", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("key_file", keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, settingError("key_file", "tls key_file %s with cert_file %s: %w", keyFile, certFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, settingError("cert_file", "tls cert_file %s: %w", certFile, err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, settingError("cert_file", "tls cert_file %s: certificate expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, settingError("cert_file", "tls cert_file %s: certificate not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   min,
		NextProtos:   append([]string(nil), alpn...),
	}
	if clientCAFile != "" {
		caPEM, err := readFile("client_ca_file", clientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if n, err := appendCerts(pool, caPEM); err != nil {
			return nil, settingError("client_ca_file", "tls client_ca_file %s: %w", clientCAFile, err)
		} else if n == 0 {
			return nil, settingError("client_ca_file", "tls client_ca_file %s: no PEM certificate in it", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// readFile reads the file a setting names; the error names both. Only a
// regular file of at most maxFileSize is read: a device or a FIFO would
// block or never end.
func readFile(setting, path string) ([]byte, error) {
	b, err := readRegular(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, settingError(setting, "tls %s %s: %w", setting, path, err)
	}
	return b, nil
}

func readRegular(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return b, nil
}

// appendCerts adds every CERTIFICATE block of b to pool and returns how
// many; a block that does not parse is an error, not skipped.
func appendCerts(pool *x509.CertPool, b []byte) (int, error) {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return n, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
}
