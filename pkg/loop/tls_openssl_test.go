package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
	"github.com/netd/netd/internal/testutil"
)

// TestTLSOpenSSLClient: openssl s_client, a client netd shares no code
// with, gets its lines back byte-exact over TLS 1.2 and 1.3, verifying
// the server's certificate, with ALPN and a client certificate.
func TestTLSOpenSSLClient(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	var clientCA *testpki.CA
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) {
		clientCA = testpki.NewCA(t, "clients")
		s.TLS.Config.ClientCAs = clientCA.Pool
		s.TLS.Config.ClientAuth = tls.VerifyClientCertIfGiven
		s.TLS.Config.NextProtos = []string{"netd-echo"}
	})
	client := clientCA.Client(t, "openssl")
	_, address := testutil.SplitAddr(f.lis.Addr())
	for _, tc := range []struct {
		name    string
		args    []string
		version uint16
		subject string
	}{
		{name: "1.2", args: []string{"-tls1_2"}, version: tls.VersionTLS12},
		{name: "1.3", args: []string{"-tls1_3"}, version: tls.VersionTLS13},
		{name: "1.3 mutual", args: []string{"-tls1_3", "-cert", client.CertFile, "-key", client.KeyFile}, version: tls.VersionTLS13, subject: "CN=openssl,O=netd test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"s_client", "-connect", address, "-servername", "localhost",
				"-CAfile", f.ca.File, "-verify_return_error", "-alpn", "netd-echo", "-quiet"}, tc.args...)
			cmd := exec.CommandContext(ctx, openssl, args...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// -quiet implies -ign_eof: s_client stays until it is ended.
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			want := randomLines(256<<10, uint64(tc.version))
			go func() {
				_, _ = stdin.Write(want)
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(stdout, got); err != nil {
				t.Fatalf("read back: %v; openssl said: %s", err, stderr.String())
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("echo differs at byte %d", firstDiff(got, want))
			}
			info := f.nextInfo(t)
			if info.Version != tc.version || info.ALPN != "netd-echo" || info.ServerName != "localhost" || info.PeerSubject != tc.subject {
				t.Fatalf("module saw %+v", info)
			}
		})
	}
}
