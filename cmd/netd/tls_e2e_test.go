package main_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testpki"
	"github.com/netd/netd/internal/testutil"
)

// tlsSetup is a daemon serving echo over TLS, with the certificates it
// was given, made for the test.
type tlsSetup struct {
	t      testing.TB
	d      *testutil.Daemon
	dir    string // the config's directory, where server.pem and server-key.pem are
	config string
	ca     *testpki.CA
	server *testpki.Issued
	client *testpki.Issued // signed by ca, accepted by the mtls listener
}

// installServer copies is to dir/server.pem and dir/server-key.pem, each
// by a rename, so that a reload reads one or the other whole.
func installServer(t *testing.T, is *testpki.Issued, dir string) {
	t.Helper()
	for from, to := range map[string]string{is.CertFile: "server.pem", is.KeyFile: "server-key.pem"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, to+".new")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
}

// startTLS serves three raw echo listeners: tls (TLS 1.2 and 1.3, ALPN h2
// and netd), tls13 (1.3 only) and mtls (client certificates of the test's
// CA required), every handshake_timeout 1s, with an admin endpoint.
func startTLS(t *testing.T) *tlsSetup {
	t.Helper()
	s := &tlsSetup{t: t, dir: t.TempDir(), ca: testpki.NewCA(t, "e2e")}
	s.server = s.ca.Server(t, "server", time.Time{})
	s.client = s.ca.Client(t, "alice")
	installServer(t, s.server, s.dir)
	b, err := os.ReadFile(s.ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "ca.pem"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.config = filepath.Join(s.dir, "netd.yaml")
	cfg := `admin: {address: "127.0.0.1:0"}
shutdown_timeout: 20s
listeners:
  - name: tls
    address: tcp://127.0.0.1:0
    module: echo
    options: {mode: raw}
    tls: {cert_file: server.pem, key_file: server-key.pem, alpn: [h2, netd], handshake_timeout: 1s}
  - name: tls13
    address: tcp://127.0.0.1:0
    module: echo
    options: {mode: raw}
    tls: {cert_file: server.pem, key_file: server-key.pem, min_version: "1.3", handshake_timeout: 1s}
  - name: mtls
    address: tcp://127.0.0.1:0
    module: echo
    options: {mode: raw}
    tls: {cert_file: server.pem, key_file: server-key.pem, client_ca_file: ca.pem, handshake_timeout: 1s}
`
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.d = testutil.StartDaemon(t, nil, "-c", s.config)
	return s
}

// hostPort is the host:port of listener name.
func (s *tlsSetup) hostPort(name string) string {
	s.t.Helper()
	addr, ok := s.d.Addrs[name]
	if !ok {
		s.t.Fatalf("no listener %q in %v", name, s.d.Addrs)
	}
	_, hp, _ := strings.Cut(addr, "://")
	return hp
}

// dialTLS makes a Go TLS connection to listener name.
func (s *tlsSetup) dialTLS(t *testing.T, name string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs, cfg.ServerName = s.ca.Pool, "localhost"
	c := tls.Client(s.d.Dial(name), cfg)
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake with %s: %v", name, err)
	}
	return c
}

// closed is the count of connections of listener closed for reason, from
// /metrics.
func (s *tlsSetup) closed(t *testing.T, listener, reason string) float64 {
	t.Helper()
	_, text := httpGet(t, s.d.Addrs["admin"]+"/metrics")
	re := regexp.MustCompile(`(?m)^netd_connections_closed_total\{listener="` + listener + `",reason="` + reason + `"\} (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v
}

// waitClosed waits, bounded, until listener has closed want connections
// for reason.
func (s *tlsSetup) waitClosed(t *testing.T, listener, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.closed(t, listener, reason)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("netd_connections_closed_total{listener=%q,reason=%q} = %v, want %v", listener, reason, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sClient runs `openssl s_client -nocommands` with args, writes input to it, and reads
// its output until done says it has what it needs (or 20s pass); then it
// ends its input, and s_client quits. It returns stdout and stderr.
func sClient(t *testing.T, input []byte, done func(out []byte) bool, args ...string) ([]byte, string) {
	t.Helper()
	bin := lookProgram(t, "openssl", "openssl")
	// -nocommands: a line of the input that starts with a letter such as
	// k or Q is data, not an s_client command.
	cmd := exec.Command(bin, append([]string{"s_client", "-nocommands"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []byte
	read := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := stdout.Read(buf)
			mu.Lock()
			out = append(out, buf[:n]...)
			mu.Unlock()
			if err != nil {
				close(read)
				return
			}
		}
	}()
	go func() { _, _ = stdin.Write(input) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		ok := done(out)
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
		select {
		case <-read:
			deadline = time.Now() // s_client has quit: nothing more comes
		case <-time.After(20 * time.Millisecond):
		}
	}
	stdin.Close()
	exited := make(chan struct{})
	go func() { <-read; _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill() // ours, by PID
		<-exited
	}
	mu.Lock()
	defer mu.Unlock()
	return out, stderr.String()
}

func hasAtLeast(n int) func([]byte) bool { return func(b []byte) bool { return len(b) >= n } }

// TestTLSOpenSSLEcho: openssl s_client, over TLS 1.2 and 1.3, gets back
// every byte of a binary payload, unchanged.
func TestTLSOpenSSLEcho(t *testing.T) {
	s := startTLS(t)
	payload := make([]byte, 200<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		t.Run(version, func(t *testing.T) {
			out, stderr := sClient(t, payload, hasAtLeast(len(payload)), "-connect", s.hostPort("tls"), "-CAfile", s.ca.File,
				"-verify_return_error", "-servername", "localhost", version, "-quiet", "-no_ign_eof")
			if !bytes.Equal(out, payload) {
				t.Fatalf("got %d bytes back (equal prefix %v), want the %d sent\n%s", len(out), bytes.HasPrefix(payload, out), len(payload), stderr)
			}
		})
	}
	// TLS 1.2 on a listener whose min_version is 1.3 is refused.
	out, stderr := sClient(t, []byte("x\n"), hasAtLeast(2), "-connect", s.hostPort("tls13"), "-CAfile", s.ca.File, "-tls1_2", "-quiet", "-no_ign_eof")
	if len(out) != 0 || !strings.Contains(stderr, "protocol version") {
		t.Errorf("TLS 1.2 against min_version 1.3: got %q\n%s", out, stderr)
	}
}

// pyClient is a Python ssl client: it connects to addr, trusting ca, with
// the client certificate and ALPN protocols it is given, sends data and
// reads as many bytes back. It reports what it negotiated, what came back,
// and the error that stopped it.
const pyClient = `
import json, socket, ssl, sys
a = json.loads(sys.argv[1])
out = {"version": "", "alpn": None, "echo": "", "error": ""}
try:
    ctx = ssl.create_default_context(cafile=a["ca"])
    if a.get("cert"):
        ctx.load_cert_chain(a["cert"], a["key"])
    if a.get("alpn"):
        ctx.set_alpn_protocols(a["alpn"])
    host, port = a["addr"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            out["version"] = s.version()
            out["alpn"] = s.selected_alpn_protocol()
            data = a["data"].encode()
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                b = s.recv(65536)
                if not b:
                    break
                got += b
            out["echo"] = got.decode()
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
`

type pyResult struct {
	Version string  `json:"version"`
	ALPN    *string `json:"alpn"`
	Echo    string  `json:"echo"`
	Error   string  `json:"error"`
}

func runPython(t *testing.T, args map[string]any) pyResult {
	t.Helper()
	bin := lookProgram(t, "python3", "python3")
	arg, _ := json.Marshal(args)
	cmd := exec.Command(bin, "-c", pyClient, string(arg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		if cmd.Process != nil {
			_ = cmd.Process.Kill() // ours, by PID
		}
		<-done
		t.Fatalf("python3 did not finish")
	}
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var r pyResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("python3 printed %q: %v", out, err)
	}
	return r
}

// TestTLSPythonALPNAndMutual: Python's ssl module negotiates the version
// and ALPN protocol asked for, echoes over mutual TLS with a certificate
// of the configured CA, and is refused without one or with a stranger's;
// the refused clients never reach the module and count as failed
// handshakes.
func TestTLSPythonALPNAndMutual(t *testing.T) {
	s := startTLS(t)
	stranger := testpki.NewCA(t, "stranger").Client(t, "mallory")
	str := func(p *string) string {
		if p == nil {
			return "<none>"
		}
		return *p
	}
	cases := []struct {
		name                string
		args                map[string]any
		version, alpn, fail string // fail: a substring of the error; "" must echo
	}{
		{name: "alpn netd", args: map[string]any{"addr": s.hostPort("tls"), "alpn": []string{"netd", "x"}}, version: "TLSv1.3", alpn: "netd"},
		{name: "alpn h2 preferred", args: map[string]any{"addr": s.hostPort("tls"), "alpn": []string{"netd", "h2"}}, version: "TLSv1.3", alpn: "h2"},
		{name: "no alpn", args: map[string]any{"addr": s.hostPort("tls")}, version: "TLSv1.3", alpn: "<none>"},
		{name: "unknown alpn", args: map[string]any{"addr": s.hostPort("tls"), "alpn": []string{"spdy/1"}}, fail: "no application protocol"},
		{name: "mutual", args: map[string]any{"addr": s.hostPort("mtls"), "cert": s.client.CertFile, "key": s.client.KeyFile}, version: "TLSv1.3", alpn: "<none>"},
		{name: "mutual without certificate", args: map[string]any{"addr": s.hostPort("mtls")}, fail: "certificate required"},
		{name: "mutual with a stranger's certificate", args: map[string]any{"addr": s.hostPort("mtls"), "cert": stranger.CertFile, "key": stranger.KeyFile}, fail: "unknown ca"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.args["ca"] = s.ca.File
			c.args["data"] = "hello over " + c.name + "\n"
			r := runPython(t, c.args)
			if c.fail != "" {
				if r.Echo != "" || !strings.Contains(strings.ToLower(r.Error), c.fail) {
					t.Fatalf("got %+v, want an error with %s and no echo", r, c.fail)
				}
				return
			}
			if r.Error != "" || r.Echo != c.args["data"] || r.Version != c.version || str(r.ALPN) != c.alpn {
				t.Fatalf("got %+v (alpn %s), want version %s, alpn %s and the echo", r, str(r.ALPN), c.version, c.alpn)
			}
		})
	}
	s.waitClosed(t, "tls", "handshake_failed", 1)
	s.waitClosed(t, "mtls", "handshake_failed", 2)
}

// TestTLSHandshakeTimeout: a client that connects and sends nothing, and
// one that stops inside its ClientHello, are closed at handshake_timeout,
// counted as such; a client served meanwhile does not notice.
func TestTLSHandshakeTimeout(t *testing.T) {
	s := startTLS(t)
	good := s.dialTLS(t, "tls", nil)
	testutil.RoundTrip(t, good, "before\n")
	silent := s.d.Dial("tls")
	partial := s.d.Dial("tls")
	if _, err := partial.Write([]byte{22, 3, 1, 0, 200, 1, 0}); err != nil { // a record header, then 2 of its 200 bytes
		t.Fatal(err)
	}
	start := time.Now()
	for name, c := range map[string]net.Conn{"silent": silent, "partial": partial} {
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || (err != io.EOF && !isConnReset(err)) {
			t.Fatalf("%s client: read %d, %v; want the connection closed", name, n, err)
		}
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("closed after %v, before the 1s handshake_timeout", waited)
	}
	s.waitClosed(t, "tls", "handshake_timeout", 2)
	testutil.RoundTrip(t, good, "after\n")
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestTLSGarbageClientHello: garbage where a ClientHello belongs closes
// its connection and only it: a client mid-exchange goes on, a new one is
// served.
func TestTLSGarbageClientHello(t *testing.T) {
	s := startTLS(t)
	good := s.dialTLS(t, "tls", nil)
	testutil.RoundTrip(t, good, "before\n")
	garbage := map[string][]byte{
		"http":       []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
		"zeros":      make([]byte, 1024),
		"bad record": {22, 3, 1, 0, 40, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"huge":       {22, 3, 1, 0xff, 0xff},
	}
	for name, b := range garbage {
		c := s.d.Dial("tls")
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil && !isConnReset(err) {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Contains(got, b) {
			t.Fatalf("%s: the garbage was echoed: %q", name, got)
		}
		testutil.RoundTrip(t, good, name+" survived\n")
	}
	s.waitClosed(t, "tls", "handshake_failed", float64(len(garbage)))
	testutil.RoundTrip(t, s.dialTLS(t, "tls", nil), "new client\n")
	if strings.Contains(s.d.Log(), "panic") {
		t.Fatalf("the log shows a panic:\n%s", s.d.Log())
	}
}

// TestTLSHalfClose: after the client's close_notify, everything it sent
// comes back, followed by the server's close_notify (a clean EOF).
func TestTLSHalfClose(t *testing.T) {
	s := startTLS(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c := s.dialTLS(t, "tls", &tls.Config{MaxVersion: version})
		want := make([]byte, 1<<20)
		if _, err := rand.Read(want); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		errc := make(chan error, 1)
		go func() {
			b, err := io.ReadAll(c)
			got <- b
			errc <- err
		}()
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		b, err := <-got, <-errc
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s: got %d bytes, %v; want the %d sent and a clean end", tls.VersionName(version), len(b), err, len(want))
		}
	}
}

// TestTLSSIGTERMDrain: what TLS clients sent before SIGTERM comes back,
// each connection ends with close_notify, and the daemon exits 0.
func TestTLSSIGTERMDrain(t *testing.T) {
	s := startTLS(t)
	want := bytes.Repeat([]byte("in flight over TLS\n"), 3000)
	type result struct {
		b   []byte
		err error
	}
	results := make(chan result, 6)
	for i := 0; i < 6; i++ {
		c := s.dialTLS(t, "tls", nil)
		testutil.RoundTrip(t, c, "warm\n")
		go func() {
			b, err := io.ReadAll(c)
			results <- result{b, err}
		}()
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the bytes reach the daemon
	s.d.Signal(syscall.SIGTERM)
	for i := 0; i < 6; i++ {
		r := <-results
		if r.err != nil || !bytes.Equal(r.b, want) {
			t.Errorf("got %d bytes, %v; want the %d sent and close_notify", len(r.b), r.err, len(want))
		}
	}
	if code := s.d.Wait(25 * time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.d.Log())
	}
}

// TestTLSSIGHUPSwapsCertificate: SIGHUP re-reads the certificate files:
// new connections see the new serial, an old connection keeps echoing; a
// certificate that does not load fails the reload, which names the file,
// and the daemon serves on with the last good one.
func TestTLSSIGHUPSwapsCertificate(t *testing.T) {
	s := startTLS(t)
	old := s.dialTLS(t, "tls", nil)
	testutil.RoundTrip(t, old, "before\n")
	serial := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }
	if got := serial(old); got != s.server.Leaf.SerialNumber.String() {
		t.Fatalf("serial %s, want %s", got, s.server.Leaf.SerialNumber)
	}
	next := s.ca.Server(t, "server", time.Time{})
	installServer(t, next, s.dir)
	mark := len(s.d.Log())
	s.d.Signal(syscall.SIGHUP)
	waitLogLine(s.d, mark, "reload: done")
	fresh := s.dialTLS(t, "tls", nil)
	if got := serial(fresh); got != next.Leaf.SerialNumber.String() {
		t.Errorf("new connection's serial %s, want %s", got, next.Leaf.SerialNumber)
	}
	testutil.RoundTrip(t, fresh, "fresh\n")
	testutil.RoundTrip(t, old, "old goes on\n")
	// openssl sees it too.
	out, _ := sClient(t, nil, func(b []byte) bool { return bytes.Contains(b, []byte("END CERTIFICATE")) },
		"-connect", s.hostPort("tls13"), "-CAfile", s.ca.File, "-servername", "localhost", "-no_ign_eof")
	if !bytes.Contains(out, []byte(pemBody(t, next.CertFile))) {
		t.Errorf("openssl s_client was not shown the new certificate:\n%s", out)
	}

	expired := s.ca.Server(t, "server", time.Now().Add(-time.Minute))
	installServer(t, expired, s.dir)
	mark = len(s.d.Log())
	s.d.Signal(syscall.SIGHUP)
	line := waitLogLine(s.d, mark, "reload failed")
	if !strings.Contains(line, filepath.Join(s.dir, "server.pem")) || !strings.Contains(line, "expired") || !strings.Contains(line, s.config+":") {
		t.Errorf("the failed reload's line does not name the config position and the file: %s", line)
	}
	again := s.dialTLS(t, "tls", nil)
	if got := serial(again); got != next.Leaf.SerialNumber.String() {
		t.Errorf("after a failed reload, serial %s, want the last good %s", got, next.Leaf.SerialNumber)
	}
	testutil.RoundTrip(t, again, "again\n")
	testutil.RoundTrip(t, old, "old still goes on\n")
}

// pemBody is the base64 of a PEM file's first block, as s_client prints it.
func pemBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[1:len(lines)-1], "\n")
}

// waitLogLine waits, bounded, for a daemon log line containing substr
// after the first mark bytes of the log, and returns it.
func waitLogLine(d *testutil.Daemon, mark int, substr string) string {
	return d.WaitLog(regexp.MustCompile(`[^\n]*`+regexp.QuoteMeta(substr)+`[^\n]*`), mark)[0]
}

// TestTLSSessionResumption: openssl s_client resumes the session it saved
// (-sess_out, -sess_in), over TLS 1.2 and 1.3, and Go's client resumes
// from its session cache.
func TestTLSSessionResumption(t *testing.T) {
	s := startTLS(t)
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		t.Run(version, func(t *testing.T) {
			sess := filepath.Join(t.TempDir(), "session.pem")
			common := []string{"-connect", s.hostPort("tls"), "-CAfile", s.ca.File, "-servername", "localhost", version, "-no_ign_eof"}
			line := []byte("resume me\n")
			echoed := func(b []byte) bool { return bytes.Contains(b, line) }
			out, stderr := sClient(t, line, echoed, append(common, "-sess_out", sess)...)
			if !bytes.Contains(out, []byte("New, TLSv1.")) || !echoed(out) {
				t.Fatalf("first connection:\n%s\n%s", out, stderr)
			}
			out, stderr = sClient(t, line, echoed, append(common, "-sess_in", sess)...)
			if !bytes.Contains(out, []byte("Reused, TLSv1.")) || !echoed(out) {
				t.Fatalf("second connection did not resume:\n%s\n%s", out, stderr)
			}
		})
	}
	cache := tls.NewLRUClientSessionCache(8)
	first := s.dialTLS(t, "tls", &tls.Config{ClientSessionCache: cache})
	testutil.RoundTrip(t, first, "first\n") // the TLS 1.3 ticket comes after the handshake
	second := s.dialTLS(t, "tls", &tls.Config{ClientSessionCache: cache})
	if !second.ConnectionState().DidResume {
		t.Error("Go's client did not resume its session")
	}
	testutil.RoundTrip(t, second, "second\n")
}

// TestTLSExampleConfigs: configs/tls.yaml and tls.hcl, with a certificate
// made by the openssl command their comments give, validate and serve a
// line echo over TLS.
func TestTLSExampleConfigs(t *testing.T) {
	bin := lookProgram(t, "openssl", "openssl")
	for _, name := range []string{"tls.yaml", "tls.hcl"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("../../configs", name))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?s)#\s+(mkdir -p configs/tls && openssl req .*?server\.pem)\n`).FindSubmatch(src)
			if m == nil {
				t.Fatalf("%s has no openssl req command in its comments", name)
			}
			cmdline := regexp.MustCompile(`\\\n#\s+`).ReplaceAllString(string(m[1]), "")
			cmdline = strings.ReplaceAll(cmdline, "configs/tls", "tls")
			_, opensslArgs, _ := strings.Cut(cmdline, "&& openssl ")
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
				t.Fatal(err)
			}
			gen := exec.Command(bin, strings.Fields(opensslArgs)...)
			gen.Dir = dir
			if out, err := gen.CombinedOutput(); err != nil {
				t.Fatalf("openssl %s: %v\n%s", opensslArgs, err, out)
			}
			text := regexp.MustCompile(`127\.0\.0\.1:8443`).ReplaceAllString(string(src), "127.0.0.1:0")
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := testutil.RunNetd(t, nil, "validate", "-c", path); r.Code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			d := testutil.StartDaemon(t, nil, "-c", path)
			_, hp, _ := strings.Cut(d.Addrs["echo-tls"], "://")
			out, stderr := sClient(t, []byte("over TLS\n"), hasAtLeast(9), "-connect", hp, "-CAfile", filepath.Join(dir, "tls/server.pem"),
				"-verify_return_error", "-alpn", "netd-echo", "-quiet", "-no_ign_eof")
			if string(out) != "over TLS\n" {
				t.Fatalf("got %q\n%s", out, stderr)
			}
		})
	}
}
