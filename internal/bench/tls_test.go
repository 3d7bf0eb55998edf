package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
)

// startTLSServer runs the good line echo behind crypto/tls with a
// certificate of a test CA, and returns its address and the CA's file.
func startTLSServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	ca := testpki.NewCA(t, "bench")
	srv := ca.Server(t, "server", time.Time{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{srv.TLS}}), good)
	return "tcp://" + ln.Addr().String(), ca.File
}

// TestTLS: with --tls, bench verifies the echo over TLS, half-closes
// included (close_notify), with a full handshake per connection; the
// server's certificate is checked against --tls-ca unless --tls-insecure.
func TestTLS(t *testing.T) {
	addr, caFile := startTLSServer(t)
	for _, o := range []Options{
		{Conns: 4, InFlight: 8, TLS: true, TLSCA: caFile},
		{Conns: 4, TLS: true, TLSInsecure: true, Reconnect: true, CycleLines: 3, HalfClose: 0.5},
	} {
		o.Address, o.Duration = addr, 500*time.Millisecond
		r, err := Run(context.Background(), o)
		if err != nil {
			t.Fatalf("Run %+v: %v", o, err)
		}
		if r.Lines == 0 || r.Mismatches != 0 || r.Errors != 0 || r.ConnectErrors != 0 || r.BytesSent != r.BytesVerified {
			t.Errorf("%+v: lines %d, mismatches %d, errors %d (%s), connect errors %d (%s)", o, r.Lines, r.Mismatches, r.Errors, r.FirstError, r.ConnectErrors, r.FirstConnectErr)
		}
		if o.HalfClose > 0 && r.HalfCloses == 0 {
			t.Errorf("no half-close verified over TLS")
		}
	}
	// Without the CA, the certificate is not trusted: every connect fails.
	r, err := Run(context.Background(), Options{Address: addr, Conns: 1, Duration: 300 * time.Millisecond, TLS: true})
	if err != nil && !errors.Is(err, ErrNothingEchoed) {
		t.Fatalf("Run: %v", err)
	}
	if r.Lines != 0 || r.ConnectErrors == 0 || !strings.Contains(r.FirstConnectErr, "certificate") {
		t.Errorf("untrusted server: lines %d, connect errors %d (%s)", r.Lines, r.ConnectErrors, r.FirstConnectErr)
	}
	// The TLS flags need --tls.
	if _, err := (Options{Address: addr, TLSInsecure: true}).withDefaults(); !errors.Is(err, ErrOptions) {
		t.Errorf("--tls-insecure without --tls: %v", err)
	}
}
