package loop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// tlsEcho is lineEcho that reports what each connection's TLS says when
// its module first sees it, and counts the connections it saw close.
type tlsEcho struct {
	lineEcho
	infos   chan *api.TLSInfo
	opened  atomic.Int64
	closes  atomic.Int64
	maxBuf  atomic.Int64
	closeCh chan api.Reason
}

func newTLSEcho() *tlsEcho {
	return &tlsEcho{infos: make(chan *api.TLSInfo, 64), closeCh: make(chan api.Reason, 64)}
}

func (m *tlsEcho) OnAccept(c api.Conn) {
	m.opened.Add(1)
	select {
	case m.infos <- c.TLS():
	default:
	}
}

func (m *tlsEcho) OnReadable(c api.Conn) {
	m.lineEcho.OnReadable(c)
	if b := int64(c.Buffered()); b > m.maxBuf.Load() {
		m.maxBuf.Store(b)
	}
}

func (m *tlsEcho) OnClose(c api.Conn, r api.Reason, err error) {
	m.closes.Add(1)
	select {
	case m.closeCh <- r:
	default:
	}
}

// tlsFixture is a CA, a server certificate and a TLS listener.
type tlsFixture struct {
	ca     *testpki.CA
	server *testpki.Issued
	cfg    *tls.Config
	mod    *tlsEcho
	e      *Engine
	lis    *Listener
}

func newTLSFixture(t *testing.T, network string, edit func(*ListenerSpec)) *tlsFixture {
	t.Helper()
	f := &tlsFixture{ca: testpki.NewCA(t, "netd-test"), mod: newTLSEcho()}
	f.server = f.ca.Server(t, "server", time.Time{})
	f.cfg = &tls.Config{Certificates: []tls.Certificate{f.server.TLS}, MinVersion: tls.VersionTLS12}
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = unixPath(t)
	}
	spec := ListenerSpec{Name: "tls", Network: network, Address: addr, Module: f.mod, TLS: &TLSSpec{Config: f.cfg}}
	if edit != nil {
		edit(&spec)
	}
	f.e, f.lis = startEngine(t, Config{Loops: 2}, spec)
	return f
}

// clientConfig trusts the fixture's CA.
func (f *tlsFixture) clientConfig(version uint16) *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool, ServerName: "localhost", MinVersion: version, MaxVersion: version}
}

// dialTLS connects and handshakes, bounded in time.
func (f *tlsFixture) dialTLS(t *testing.T, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := f.tryDialTLS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *tlsFixture) tryDialTLS(cfg *tls.Config) (*tls.Conn, error) {
	network, address := testutil.SplitAddr(f.lis.Addr())
	d := &net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	c := tls.Client(raw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// nextInfo returns the TLS info the module saw for the next connection.
func (f *tlsFixture) nextInfo(t *testing.T) *api.TLSInfo {
	t.Helper()
	select {
	case info := <-f.mod.infos:
		return info
	case <-time.After(5 * time.Second):
		t.Fatal("the module did not see the connection")
		return nil
	}
}

// randomLines returns n bytes of random printable lines.
func randomLines(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		if r.IntN(60) == 0 || i == n-1 {
			b[i] = '\n'
		} else {
			b[i] = byte(' ' + r.IntN(95))
		}
	}
	return b
}

// echoAll writes want in a goroutine while reading it back; byte-exact.
func echoAll(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo differs: %d bytes, first difference at %d", len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestTLSEcho: echo is byte-exact over TLS 1.2 and 1.3, over tcp and
// unix, and the module sees the negotiated version and SNI.
func TestTLSEcho(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(network+"/"+tls.VersionName(v), func(t *testing.T) {
				f := newTLSFixture(t, network, nil)
				c := f.dialTLS(t, f.clientConfig(v))
				if got := c.ConnectionState().Version; got != v {
					t.Fatalf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(v))
				}
				info := f.nextInfo(t)
				if info == nil || info.Version != v || info.ServerName != "localhost" || info.PeerSubject != "" {
					t.Fatalf("module saw %+v", info)
				}
				if info.CipherSuite != c.ConnectionState().CipherSuite {
					t.Fatalf("module saw cipher suite %x, client %x", info.CipherSuite, c.ConnectionState().CipherSuite)
				}
				echoAll(t, c, []byte("hello\n"))
				echoAll(t, c, randomLines(300<<10, uint64(v)))
			})
		}
	}
}

// TestTLSPlaintextConnHasNoTLS: api.Conn.TLS is nil without TLS.
func TestTLSPlaintextConnHasNoTLS(t *testing.T) {
	m := newTLSEcho()
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "p", Network: "tcp", Address: "127.0.0.1:0", Module: m})
	c := dial(t, l)
	testutil.RoundTrip(t, c, "x\n")
	select {
	case info := <-m.infos:
		if info != nil {
			t.Fatalf("plaintext connection reports TLS %+v", info)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no accept")
	}
}

// TestTLSALPN: the protocol both sides know is negotiated and shown to
// the module; a client with none in common is refused.
func TestTLSALPN(t *testing.T) {
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) {
		s.TLS.Config.NextProtos = []string{"netd/1", "h2"}
	})
	cfg := f.clientConfig(tls.VersionTLS13)
	cfg.NextProtos = []string{"other", "h2"}
	c := f.dialTLS(t, cfg)
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Fatalf("client negotiated %q", got)
	}
	if info := f.nextInfo(t); info.ALPN != "h2" {
		t.Fatalf("module saw ALPN %q", info.ALPN)
	}
	echoAll(t, c, []byte("alpn\n"))

	cfg = f.clientConfig(tls.VersionTLS13)
	cfg.NextProtos = []string{"nothing-in-common"}
	if c, err := f.tryDialTLS(cfg); err == nil {
		c.Close()
		t.Fatal("a client with no common protocol completed its handshake")
	}
}

// TestTLSMutual: with client certificates required, a client with one the
// CA signed is served and its subject shown to the module; one without,
// or with one from another CA, is refused before the module sees it.
func TestTLSMutual(t *testing.T) {
	var clientCA *testpki.CA
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) {
		clientCA = testpki.NewCA(t, "clients")
		s.TLS.Config.ClientCAs = clientCA.Pool
		s.TLS.Config.ClientAuth = tls.RequireAndVerifyClientCert
	})
	good := clientCA.Client(t, "alice")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := f.clientConfig(v)
		cfg.Certificates = []tls.Certificate{good.TLS}
		c := f.dialTLS(t, cfg)
		echoAll(t, c, []byte("mutual\n"))
		info := f.nextInfo(t)
		if want := "CN=alice,O=netd test"; info.PeerSubject != want {
			t.Fatalf("%s: module saw subject %q, want %q", tls.VersionName(v), info.PeerSubject, want)
		}
	}
	opened := f.mod.opened.Load()

	stranger := testpki.NewCA(t, "strangers").Client(t, "mallory")
	for name, certs := range map[string][]tls.Certificate{"none": nil, "other CA": {stranger.TLS}} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cfg := f.clientConfig(v)
			cfg.Certificates = certs
			c, err := f.tryDialTLS(cfg)
			if err == nil {
				// TLS 1.3: the client's handshake ends before the server
				// has checked its certificate; the refusal comes next.
				_, err = c.Write([]byte("let me in\n"))
				if err == nil {
					_, err = c.Read(make([]byte, 16))
				}
				c.Close()
			}
			if err == nil {
				t.Fatalf("%s, %s: client served", name, tls.VersionName(v))
			}
		}
	}
	if got := f.mod.opened.Load(); got != opened {
		t.Fatalf("the module saw %d refused connections", got-opened)
	}
}

// TestTLSHandshakeTimeout: a client that connects and sends nothing, or
// stops halfway through its ClientHello, or after it, is closed at the
// handshake timeout; the module never hears of it.
func TestTLSHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) { s.TLS.HandshakeTimeout = timeout })
	hello := clientHello(t)
	for name, send := range map[string][]byte{
		"silent":       nil,
		"half a hello": hello[:len(hello)/2],
		"whole hello":  hello,
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, f.lis)
			if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, c) // the server's flight, if any, then the end
			if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			if d := time.Since(start); d < timeout/2 {
				t.Fatalf("closed after %v, before the timeout %v", d, timeout)
			}
		})
	}
	if n := f.mod.opened.Load() + f.mod.closes.Load(); n != 0 {
		t.Fatalf("the module saw %d events of connections that never finished a handshake", n)
	}
	// The count follows the close the client saw.
	testutil.PollUntil(5*time.Second, func() bool { return f.lis.Stats().Closed[api.ReasonHandshakeTimeout] == 3 })
	if got := f.lis.Stats().Closed[api.ReasonHandshakeTimeout]; got != 3 {
		t.Fatalf("closed for handshake timeout: %d, want 3 (%v)", got, f.lis.Stats().Closed)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// clientHello returns the first flight of a Go TLS client: its
// ClientHello record.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake()
	}()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// TestTLSGarbage: a client that sends garbage in place of a ClientHello is
// closed, and a client served beside it, before and after, does not
// notice.
func TestTLSGarbage(t *testing.T) {
	f := newTLSFixture(t, "tcp", nil)
	good := f.dialTLS(t, f.clientConfig(tls.VersionTLS13))
	echoAll(t, good, []byte("before\n"))
	hello := clientHello(t)
	bad := append([]byte(nil), hello...)
	for i := 9; i < len(bad); i++ { // keep the record and message headers
		bad[i] ^= 0x5a
	}
	for name, send := range map[string][]byte{
		"http":                []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"handshake record":    bad,
		"oversized record":    {22, 3, 1, 0xff, 0xff, 1, 2, 3},
		"zeros":               make([]byte, 4096),
		"hello then garbage:": append(append([]byte(nil), hello...), bytes.Repeat([]byte{0xee}, 512)...),
	} {
		c := dial(t, f.lis)
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("%s: %v", name, err)
		}
		echoAll(t, good, []byte(name+" done\n"))
	}
	late := f.dialTLS(t, f.clientConfig(tls.VersionTLS12))
	echoAll(t, late, []byte("after\n"))
	if got := f.mod.opened.Load(); got != 2 {
		t.Fatalf("module saw %d connections, want the 2 good ones", got)
	}
	// Each bad client counts as a failed handshake, and as nothing else.
	testutil.PollUntil(5*time.Second, func() bool { return f.lis.Stats().Closed[api.ReasonHandshakeFailed] == 5 })
	if got := f.lis.Stats().Closed; got[api.ReasonHandshakeFailed] != 5 || got[api.ReasonError] != 0 {
		t.Fatalf("closed by reason %v, want handshake_failed 5 and no error", got)
	}
}

// TestTLSHalfClose: after a client's close_notify, or its FIN alone, the
// module sees the end after the last byte, and what it writes then still
// reaches the client, followed by the server's close_notify.
func TestTLSHalfClose(t *testing.T) {
	for _, how := range []string{"close_notify", "fin"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(how+"/"+tls.VersionName(v), func(t *testing.T) {
				f := newTLSFixture(t, "tcp", nil)
				c := f.dialTLS(t, f.clientConfig(v))
				// The last line has no newline: lineEcho sends it only on
				// the end of input.
				want := append(randomLines(200<<10, 7), "no newline"...)
				if _, err := c.Write(want); err != nil {
					t.Fatal(err)
				}
				var err error
				if how == "close_notify" {
					err = c.CloseWrite()
				} else {
					err = c.NetConn().(*net.TCPConn).CloseWrite()
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatalf("read after %d bytes: %v (the server's close_notify must end the stream)", len(got), err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("got %d bytes back, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
				}
				select {
				case r := <-f.mod.closeCh:
					if r != api.ReasonClient {
						t.Fatalf("closed for %q", r)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no OnClose")
				}
			})
		}
	}
}

// TestTLSShutdownDrains: lines in flight when Shutdown begins come back
// over TLS, then the server's close_notify ends the stream.
func TestTLSShutdownDrains(t *testing.T) {
	f := newTLSFixture(t, "tcp", nil)
	c := f.dialTLS(t, f.clientConfig(tls.VersionTLS13))
	echoAll(t, c, []byte("warm\n"))
	want := bytes.Repeat([]byte("in flight\n"), 5000)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.e.Shutdown(ctx) }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(want))
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestTLSLargeTransferSlowReader: several MiB each way through a client
// that reads slowly: reading pauses at the high watermark, queued output
// stays bounded, and every byte arrives in order.
func TestTLSLargeTransferSlowReader(t *testing.T) {
	const high = 64 << 10
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) { s.HighWatermark = high })
	c := f.dialTLS(t, f.clientConfig(tls.VersionTLS13))
	want := randomLines(6<<20, 99)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	slow := 0
	for got.Len() < len(want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
		if slow < 40 {
			slow++
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("echo differs at %d", firstDiff(got.Bytes(), want))
	}
	if f.lis.Stats().ReadsPaused == 0 {
		t.Fatal("reading never paused at the high watermark")
	}
	// One read's worth of echo can land above the mark: a read decrypts
	// at most a read buffer's and a record's worth.
	if m := f.mod.maxBuf.Load(); m > high+128<<10 {
		t.Fatalf("queued output reached %d bytes, high watermark %d", m, high)
	}
}

// TestTLSResumption: a second connection with the first one's session
// ticket resumes, over TLS 1.2 and 1.3, and the module is told.
func TestTLSResumption(t *testing.T) {
	f := newTLSFixture(t, "tcp", nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := f.clientConfig(v)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for i, wantResumed := range []bool{false, true} {
			c := f.dialTLS(t, cfg)
			// TLS 1.3 tickets come after the handshake: a round trip
			// makes sure the client has read them.
			echoAll(t, c, []byte("ticket\n"))
			if got := c.ConnectionState().DidResume; got != wantResumed {
				t.Fatalf("%s connection %d: DidResume %v", tls.VersionName(v), i, got)
			}
			if info := f.nextInfo(t); info.DidResume != wantResumed {
				t.Fatalf("%s connection %d: module saw DidResume %v", tls.VersionName(v), i, info.DidResume)
			}
			c.Close()
		}
	}
}

// TestTLSCertificateChange: once GetConfig returns a new certificate, new
// handshakes present it, and a connection made before goes on.
func TestTLSCertificateChange(t *testing.T) {
	var cur atomic.Pointer[tls.Config]
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) {
		s.TLS.GetConfig = cur.Load
	})
	cur.Store(f.cfg)
	old := f.dialTLS(t, f.clientConfig(tls.VersionTLS13))
	echoAll(t, old, []byte("old\n"))

	renewed := f.ca.Server(t, "renewed", time.Time{})
	cur.Store(&tls.Config{Certificates: []tls.Certificate{renewed.TLS}})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c := f.dialTLS(t, f.clientConfig(v))
		if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(renewed.Leaf.SerialNumber) != 0 {
			t.Fatalf("%s: new connection got certificate %v, want %v", tls.VersionName(v), got, renewed.Leaf.SerialNumber)
		}
		echoAll(t, c, []byte("new\n"))
	}
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(f.server.Leaf.SerialNumber) != 0 {
		t.Fatalf("old connection's certificate changed to %v", got)
	}
	echoAll(t, old, []byte("old still\n"))
}

// TestTLSManyClients: many concurrent handshakes over two loops, more
// than the pool has slots, all served.
func TestTLSManyClients(t *testing.T) {
	f := newTLSFixture(t, "tcp", nil)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := uint16(tls.VersionTLS12 + i%2)
			c, err := f.tryDialTLS(f.clientConfig(v))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			line := fmt.Sprintf("client %d\n", i)
			if _, err := c.Write([]byte(line)); err != nil {
				errs <- err
				return
			}
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || got != line {
				errs <- fmt.Errorf("client %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTLSSpecErrors: a TLS listener without a configuration, or on udp,
// is refused at Listen.
func TestTLSSpecErrors(t *testing.T) {
	e, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Shutdown(context.Background()) }()
	for _, spec := range []ListenerSpec{
		{Name: "noconf", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}, TLS: &TLSSpec{}},
		{Name: "udp", Network: "udp", Address: "127.0.0.1:0", Module: &lineEcho{}, TLS: &TLSSpec{Config: &tls.Config{}}},
	} {
		if _, err := e.Listen(spec); err == nil {
			t.Errorf("%s: Listen succeeded", spec.Name)
		} else {
			t.Logf("%s: %v", spec.Name, err)
		}
	}
}
