package daemon

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
	"github.com/netd/netd/internal/testutil"
)

// installCert copies an issued certificate and its key to the files a
// config names.
func installCert(t *testing.T, is *testpki.Issued, cert, key string) {
	t.Helper()
	for from, to := range map[string]string{is.CertFile: cert, is.KeyFile: key} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".tmp", to); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsDial makes a TLS connection to the listener name, trusting ca, with
// cache (nil: none) for session resumption.
func tlsDial(t *testing.T, d *Daemon, name string, ca *testpki.CA, cache tls.ClientSessionCache) *tls.Conn {
	t.Helper()
	raw := dialListener(t, d, name)
	c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", ClientSessionCache: cache})
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

func serial(c *tls.Conn) string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestReloadSwapsCertificate: a reload re-reads the certificate of a TLS
// listener whose settings did not change; new handshakes get the new one,
// an established connection goes on, and a session from before the reload
// still resumes. A reload whose certificate does not load fails whole.
func TestReloadSwapsCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "reload")
	first, second := ca.Server(t, "first", time.Time{}), ca.Server(t, "second", time.Time{})
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	installCert(t, first, cert, key)
	path := filepath.Join(dir, "netd.yaml")
	cfg := "listeners:\n  - name: tls\n    address: tcp://127.0.0.1:0\n    module: echo\n    tls: {cert_file: server.pem, key_file: server-key.pem}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	d := startSource(t, Source{Path: path}, log)
	cache := tls.NewLRUClientSessionCache(4)

	old := tlsDial(t, d, "tls", ca, cache)
	testutil.RoundTrip(t, old, "before\n")
	if got, want := serial(old), first.Leaf.SerialNumber.String(); got != want {
		t.Fatalf("serial %s, want %s", got, want)
	}
	addr := d.Addrs()["tls"]

	installCert(t, second, cert, key)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if d.Addrs()["tls"] != addr {
		t.Errorf("the listener moved from %s to %s", addr, d.Addrs()["tls"])
	}
	waitLog(t, log, "reload: TLS certificate re-read")
	testutil.RoundTrip(t, old, "after\n")
	// A fresh session, and one resumed from before the reload.
	fresh := tlsDial(t, d, "tls", ca, nil)
	if got, want := serial(fresh), second.Leaf.SerialNumber.String(); got != want {
		t.Errorf("new connection's serial %s, want %s", got, want)
	}
	testutil.RoundTrip(t, fresh, "new\n")
	resumed := tlsDial(t, d, "tls", ca, cache)
	if !resumed.ConnectionState().DidResume {
		t.Errorf("a session from before the reload did not resume")
	}
	testutil.RoundTrip(t, resumed, "resumed\n")

	// A key that does not match: the reload fails and changes nothing.
	other := ca.Server(t, "other", time.Time{})
	b, err := os.ReadFile(other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	err = d.Reload()
	if err == nil || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), key) {
		t.Fatalf("reload with a mismatched key: %v", err)
	}
	lines := waitLog(t, log, "reload failed; running config unchanged")
	if !strings.Contains(strings.Join(lines, "\n"), path+":5:") {
		t.Errorf("the failed reload's log does not place the error in the config:\n%s", strings.Join(lines, "\n"))
	}
	again := tlsDial(t, d, "tls", ca, nil)
	if got, want := serial(again), second.Leaf.SerialNumber.String(); got != want {
		t.Errorf("after a failed reload, serial %s, want %s", got, want)
	}
	testutil.RoundTrip(t, again, "still\n")
	testutil.RoundTrip(t, old, "old still\n")
}
