package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
)

func TestLoad(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	good := ca.Server(t, "good", time.Time{})
	other := ca.Server(t, "other", time.Time{})
	expired := ca.Server(t, "expired", time.Now().Add(-time.Minute))
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name                     string
		cert, key, clientCA, min string
		alpn                     []string
		wantErr                  []string // substrings of the error; nil: no error
	}{
		{name: "plain", cert: good.CertFile, key: good.KeyFile},
		{name: "mutual, 1.3, alpn", cert: good.CertFile, key: good.KeyFile, clientCA: ca.File, min: "1.3", alpn: []string{"h2", "netd"}},
		{name: "missing cert", cert: missing, key: good.KeyFile, wantErr: []string{"cert_file", missing, "no such file"}},
		{name: "missing key", cert: good.CertFile, key: missing, wantErr: []string{"key_file", missing}},
		{name: "missing client CA", cert: good.CertFile, key: good.KeyFile, clientCA: missing, wantErr: []string{"client_ca_file", missing}},
		{name: "key of another cert", cert: good.CertFile, key: other.KeyFile, wantErr: []string{other.KeyFile, good.CertFile, "does not match"}},
		{name: "expired", cert: expired.CertFile, key: expired.KeyFile, wantErr: []string{"cert_file", expired.CertFile, "expired"}},
		{name: "garbage cert", cert: garbage, key: good.KeyFile, wantErr: []string{garbage}},
		{name: "garbage client CA", cert: good.CertFile, key: good.KeyFile, clientCA: garbage, wantErr: []string{"client_ca_file", garbage, "no PEM certificate"}},
		{name: "bad version", cert: good.CertFile, key: good.KeyFile, min: "1.4", wantErr: []string{"min_version", `"1.4"`}},
		{name: "empty alpn", cert: good.CertFile, key: good.KeyFile, alpn: []string{""}, wantErr: []string{"alpn"}},
		{name: "no key file", cert: good.CertFile, wantErr: []string{"key_file"}},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name                     string
			cert, key, clientCA, min string
			alpn                     []string
			wantErr                  []string
		}{name: "unreadable key", cert: good.CertFile, key: unreadable, wantErr: []string{"key_file", unreadable, "permission denied"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.cert, tt.key, tt.clientCA, tt.min, tt.alpn)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Certificates) != 1 || cfg.Certificates[0].Leaf.Subject.CommonName != "good" {
					t.Fatalf("certificates %+v", cfg.Certificates)
				}
				wantMin := uint16(tls.VersionTLS12)
				if tt.min == "1.3" {
					wantMin = tls.VersionTLS13
				}
				if cfg.MinVersion != wantMin {
					t.Fatalf("MinVersion %x, want %x", cfg.MinVersion, wantMin)
				}
				if strings.Join(cfg.NextProtos, ",") != strings.Join(tt.alpn, ",") {
					t.Fatalf("NextProtos %v", cfg.NextProtos)
				}
				if (tt.clientCA != "") != (cfg.ClientAuth == tls.RequireAndVerifyClientCert && cfg.ClientCAs != nil) {
					t.Fatalf("client auth %v with client_ca_file %q", cfg.ClientAuth, tt.clientCA)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// TestLoadNotYetValid: a certificate valid only from a later time is
// refused too.
func TestLoadNotYetValid(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	c := ca.Server(t, "c", time.Time{})
	_, err := load(c.CertFile, c.KeyFile, "", "", nil, time.Now().Add(-2*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("err %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, in := range []string{"1.4", "TLS1.2", " 1.2", "1", "v1.3"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"", "1.2", "1.3", "1.4", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err == nil && (v < tls.VersionTLS10 || v > tls.VersionTLS13) {
			t.Fatalf("ParseVersion(%q) = %x", s, v)
		}
		if err != nil && (v != 0 || strings.Contains(err.Error(), "\n")) {
			t.Fatalf("ParseVersion(%q): %x, %q", s, v, err)
		}
	})
}

// FuzzAppendCerts: whatever a client_ca_file holds, reading it returns a
// count or an error, never a panic.
func FuzzAppendCerts(f *testing.F) {
	ca := testpki.NewCA(f, "ca")
	b, err := os.ReadFile(ca.File)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = appendCerts(x509.NewCertPool(), b)
	})
}

// TestErrorSetting: each failure names, as an *Error, the setting whose
// file or value is at fault, so that a config can point at its line; a
// file that is not regular, or too large, is refused unread.
func TestErrorSetting(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	good := ca.Server(t, "good", time.Time{})
	other := ca.Server(t, "other", time.Time{})
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cert, key, clientCA, min string
		alpn                     []string
		setting, says            string
	}{
		{cert: "/dev/zero", key: good.KeyFile, setting: "cert_file", says: "not a regular file"},
		{cert: good.CertFile, key: t.TempDir(), setting: "key_file", says: "not a regular file"},
		{cert: good.CertFile, key: good.KeyFile, clientCA: big, setting: "client_ca_file", says: "larger than"},
		{cert: good.CertFile, key: other.KeyFile, setting: "key_file", says: "does not match"},
		{cert: good.CertFile, key: good.KeyFile, min: "2", setting: "min_version", says: `"2"`},
		{cert: good.CertFile, key: good.KeyFile, alpn: []string{strings.Repeat("x", 256)}, setting: "alpn", says: "1 to 255 bytes"},
	}
	for _, tt := range tests {
		_, err := Load(tt.cert, tt.key, tt.clientCA, tt.min, tt.alpn)
		var e *Error
		if !errors.As(err, &e) || e.Setting != tt.setting || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("Load(%s, %s, %q, %q): %v (%T), want an *Error of %s saying %q", tt.cert, tt.key, tt.clientCA, tt.min, err, err, tt.setting, tt.says)
		}
	}
}
