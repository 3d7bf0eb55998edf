package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
)

// goodDir copies testdata/good into a temporary directory with the
// certificates its tls blocks name (tls/server.pem, tls/server-key.pem,
// tls/ca.pem), made now: no key is committed, and none expires.
func goodDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	paths, _ := filepath.Glob("testdata/good/*")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePKI(t, filepath.Join(dir, "tls"))
	return dir
}

// pkiFiles are the certificates writePKI made.
type pkiFiles struct {
	ca     *testpki.CA
	server *testpki.Issued
}

// writePKI makes a CA and a server certificate and copies them into dir
// as ca.pem, server.pem and server-key.pem.
func writePKI(t *testing.T, dir string) pkiFiles {
	t.Helper()
	ca := testpki.NewCA(t, "config-test")
	srv := ca.Server(t, "server", time.Time{})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{ca.File: "ca.pem", srv.CertFile: "server.pem", srv.KeyFile: "server-key.pem"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pkiFiles{ca: ca, server: srv}
}

// TestTLSServer: the configuration Load builds serves the certificate the
// files hold, with the settings of the block.
func TestTLSServer(t *testing.T) {
	dir := goodDir(t)
	c, err := Load(filepath.Join(dir, "full.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Listeners[0].TLS.Server
	if s == nil || len(s.Certificates) != 1 {
		t.Fatalf("Server = %+v", s)
	}
	want, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls/server.pem"), filepath.Join(dir, "tls/server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Certificates[0].Certificate[0], want.Certificate[0]) {
		t.Error("Server serves another certificate than tls/server.pem")
	}
	if s.MinVersion != tls.VersionTLS13 || !slices.Equal(s.NextProtos, []string{"h2", "netd"}) ||
		s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil {
		t.Errorf("Server: MinVersion %x, NextProtos %v, ClientAuth %v, ClientCAs %v", s.MinVersion, s.NextProtos, s.ClientAuth, s.ClientCAs)
	}
	// Relative paths are the config file's directory's, not the working
	// directory's: loading through another relative path finds them too.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, filepath.Join(dir, "tls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(rel, nil); err != nil {
		t.Errorf("Load(%s): %v", rel, err)
	}
}

// TestTLSFiles: what is wrong with a file a tls block names is an error at
// the setting that names it, naming the file as netd opened it.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	pki := writePKI(t, dir)
	other := pki.ca.Server(t, "other", time.Time{})
	expired := pki.ca.Server(t, "expired", time.Now().Add(-time.Minute))
	copyFile(t, other.KeyFile, filepath.Join(dir, "other-key.pem"))
	copyFile(t, expired.CertFile, filepath.Join(dir, "expired.pem"))
	copyFile(t, expired.KeyFile, filepath.Join(dir, "expired-key.pem"))
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "unreadable.pem"), []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, pki.server.CertFile, filepath.Join(dir, "sub", "server.pem"))
	copyFile(t, pki.server.KeyFile, filepath.Join(dir, "sub", "server-key.pem"))

	const head = "listeners:\n  - name: a\n    address: tcp://127.0.0.1:1\n    module: test-echo\n    tls:\n"
	tests := []struct {
		name, block string
		want        string // the error after "FILE:"; DIR stands for the config's directory
	}{
		{"good", "      cert_file: server.pem\n      key_file: server-key.pem\n", ""},
		{"subdirectory", "      cert_file: sub/server.pem\n      key_file: DIR/sub/server-key.pem\n", ""},
		{"missing cert", "      cert_file: missing.pem\n      key_file: server-key.pem\n",
			`6:18: listener "a": tls cert_file DIR/missing.pem: no such file or directory`},
		{"missing key", "      cert_file: server.pem\n      key_file: nokey.pem\n",
			`7:17: listener "a": tls key_file DIR/nokey.pem: no such file or directory`},
		{"key of another certificate", "      cert_file: server.pem\n      key_file: other-key.pem\n",
			`7:17: listener "a": tls key_file DIR/other-key.pem with cert_file DIR/server.pem: tls: private key does not match public key`},
		{"expired", "      cert_file: expired.pem\n      key_file: expired-key.pem\n",
			`6:18: listener "a": tls cert_file DIR/expired.pem: certificate expired at ` + expired.Leaf.NotAfter.UTC().Format(time.RFC3339)},
		{"garbage client CA", "      cert_file: server.pem\n      key_file: server-key.pem\n      client_ca_file: garbage.pem\n",
			`8:23: listener "a": tls client_ca_file DIR/garbage.pem: no PEM certificate in it`},
		{"a device", "      cert_file: /dev/zero\n      key_file: server-key.pem\n",
			`6:18: listener "a": tls cert_file /dev/zero: not a regular file`},
		{"a directory", "      cert_file: sub\n      key_file: server-key.pem\n",
			`6:18: listener "a": tls cert_file DIR/sub: not a regular file`},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct{ name, block, want string }{"unreadable", "      cert_file: server.pem\n      key_file: unreadable.pem\n",
			`7:17: listener "a": tls key_file DIR/unreadable.pem: permission denied`})
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			c, err := Parse(file, []byte(head+strings.ReplaceAll(tt.block, "DIR", dir)), nil)
			if tt.want == "" {
				if err != nil || c.Listeners[0].TLS.Server == nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			want := file + ":" + strings.ReplaceAll(tt.want, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSDiffers: changing each key of a tls block, and only it, makes
// Differs name tls; an absent block differs from a present one.
func TestTLSDiffers(t *testing.T) {
	dir := goodDir(t)
	kc := keyChanges{
		"cert_file":         {"tls/server.pem", "./tls/server.pem"},
		"key_file":          {"tls/server-key.pem", "./tls/server-key.pem"},
		"client_ca_file":    {"tls/ca.pem", "./tls/ca.pem"},
		"min_version":       {"'1.2'", "'1.3'"},
		"alpn":              {"[h2, netd]", "[netd, h2]"},
		"handshake_timeout": {"1s", "2s"},
	}
	keys := names(tlsKeys)
	parse := func(change string) Listener {
		t.Helper()
		src := kc.render(t, keys, change, "listeners:\n  - {name: a, address: 'tcp://127.0.0.1:1', module: test-echo, tls: {%s}}\n", ", ")
		c, err := Parse(filepath.Join(dir, "t.yaml"), []byte(src), nil)
		if err != nil {
			t.Fatalf("%s\n%v", src, err)
		}
		return c.Listeners[0]
	}
	base := parse("")
	if d := base.Differs(parse("")); d != nil {
		t.Errorf("the same listener differs: %v", d)
	}
	for _, k := range keys {
		l := parse(k)
		if d := base.Differs(l); !slices.Equal(d, []string{"tls"}) {
			t.Errorf("changing tls.%s: Differs = %v", k, d)
		}
	}
	plain := base
	plain.TLS = nil
	if d := base.Differs(plain); !slices.Equal(d, []string{"tls"}) {
		t.Errorf("dropping tls: Differs = %v", d)
	}
	if d := plain.Differs(base); !slices.Equal(d, []string{"tls"}) {
		t.Errorf("adding tls: Differs = %v", d)
	}
}
