package echo_test

// TLS line echo through the loop and the echo module, beside a Go stdlib
// crypto/tls echo server with a goroutine per connection, in one run:
//
//	go test -run '^$' -bench 'TLS' -benchmem ./pkg/modules/echo
//	NETD_TLS_IDLE_CONNS=10000 go test -run TestTLSIdleMemory -v ./pkg/modules/echo
//
// The client is crypto/tls in the same process, the same for both
// servers: ns/op and allocs/op include its share, and the difference
// between the two rows is the servers'.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/looptest"
	"github.com/netd/netd/internal/testpki"
	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// tlsServerConfig makes a CA and a server certificate, and returns the
// server's and a trusting client's configurations.
func tlsServerConfig(tb testing.TB) (server, client *tls.Config) {
	ca := testpki.NewCA(tb, "bench")
	cert := ca.Server(tb, "server", time.Time{})
	return &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		&tls.Config{RootCAs: ca.Pool, ServerName: "localhost", ClientSessionCache: nil}
}

// startNetdTLS runs the echo module on a TLS listener with one loop and
// returns its host:port.
func startNetdTLS(tb testing.TB, cfg *tls.Config) string {
	tb.Helper()
	mod := new(echo.Echo)
	if err := apitest.Provision(tb, mod, "tcp", ""); err != nil {
		tb.Fatal(err)
	}
	l := looptest.Serve(tb, 1, loop.ListenerSpec{Name: "bench", Network: "tcp", Address: "127.0.0.1:0", Module: mod, TLS: &loop.TLSSpec{Config: cfg}})
	return strings.TrimPrefix(l.Addr(), "tcp://")
}

// startStdlibTLS runs a crypto/tls line echo server, a goroutine per
// connection, as Go programs usually are, and returns its host:port.
func startStdlibTLS(tb testing.TB, cfg *tls.Config) string {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	testutil.Serve(tb, ln, stdlibLineEcho)
	return ln.Addr().String()
}

// stdlibLineEcho echoes complete lines as the echo module does: what a
// read brings, up to its last newline, in one write.
func stdlibLineEcho(c net.Conn) {
	buf := make([]byte, 16<<10)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		have += n
		if i := bytes.LastIndexByte(buf[:have], '\n'); i >= 0 {
			if _, werr := c.Write(buf[:i+1]); werr != nil {
				return
			}
			have = copy(buf, buf[i+1:have])
		}
		if have == len(buf) { // a line longer than the buffer: pass it on
			if _, werr := c.Write(buf); werr != nil {
				return
			}
			have = 0
		}
		if err != nil {
			return
		}
	}
}

var tlsServers = []struct {
	name  string
	start func(testing.TB, *tls.Config) string
}{{"netd", startNetdTLS}, {"stdlib", startStdlibTLS}}

// BenchmarkTLSEcho: one op is one 64-byte line echoed over TLS 1.3.
func BenchmarkTLSEcho(b *testing.B) {
	for _, bc := range []struct {
		name  string
		lines int
	}{{"pingpong", 1}, {"pipelined16", pipelineDepth}} {
		for _, srv := range tlsServers {
			b.Run(bc.name+"/"+srv.name, func(b *testing.B) {
				scfg, ccfg := tlsServerConfig(b)
				addr := srv.start(b, scfg)
				c, err := tls.Dial("tcp", addr, ccfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
				out := bytes.Repeat([]byte(strings.Repeat("x", lineSize-1)+"\n"), bc.lines)
				in := make([]byte, len(out))
				round := func() {
					if _, err := c.Write(out); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, in); err != nil {
						b.Fatal(err)
					}
				}
				for range 100 {
					round()
				}
				if !bytes.Equal(in, out) {
					b.Fatal("echo differs")
				}
				b.SetBytes(lineSize)
				b.ReportAllocs()
				b.ResetTimer()
				for done := 0; done < b.N; done += bc.lines {
					round()
				}
			})
		}
	}
}

// BenchmarkTLSHandshake: one op is a connect, a full TLS 1.3 handshake
// (no resumption), one echoed line and a close.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, srv := range tlsServers {
		b.Run(srv.name, func(b *testing.B) {
			scfg, ccfg := tlsServerConfig(b)
			addr := srv.start(b, scfg)
			line := []byte("hello\n")
			in := make([]byte, len(line))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c, err := tls.Dial("tcp", addr, ccfg)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(line); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// TestTLSIdleMemory measures what an idle TLS connection costs each
// server: a child process (this test binary again) opens
// NETD_TLS_IDLE_CONNS connections, echoes a line on each and holds them;
// the server, in this process, reports its growth in RSS, heap and
// goroutine stacks per connection. Each server is measured in its own
// child-served run, in a fresh process, so that neither inherits the
// other's heap.
func TestTLSIdleMemory(t *testing.T) {
	if os.Getenv("NETD_TLS_IDLE_CHILD") != "" {
		idleClientChild(t)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("NETD_TLS_IDLE_CONNS"))
	server := os.Getenv("NETD_TLS_IDLE_SERVER")
	if n <= 0 {
		t.Skip("set NETD_TLS_IDLE_CONNS (and NETD_TLS_IDLE_SERVER=netd|stdlib) to measure")
	}
	if server == "" {
		for _, s := range tlsServers {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestTLSIdleMemory$", "-test.v")
			cmd.Env = append(os.Environ(), "NETD_TLS_IDLE_SERVER="+s.name)
			out, err := cmd.CombinedOutput()
			t.Logf("%s:\n%s", s.name, out)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		return
	}
	var start func(testing.TB, *tls.Config) string
	for _, s := range tlsServers {
		if s.name == server {
			start = s.start
		}
	}
	scfg, _ := tlsServerConfig(t)
	addr := start(t, scfg)
	// The client trusts the server's certificate: it is the only one.
	certFile := t.TempDir() + "/server.der"
	if err := os.WriteFile(certFile, scfg.Certificates[0].Certificate[0], 0o600); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	rss0, heap0, stack0 := memNow()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTLSIdleMemory$")
	cmd.Env = append(os.Environ(), "NETD_TLS_IDLE_CHILD=1", "NETD_TLS_IDLE_ADDR="+addr, "NETD_TLS_IDLE_CERT="+certFile)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child exits
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("child: %q, %v", line, err)
	}
	time.Sleep(time.Second) // let the last handshakes' goroutines end
	runtime.GC()
	runtime.GC()
	rss1, heap1, stack1 := memNow()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	t.Logf("%s, %d idle TLS connections: RSS %.0f B/conn, heap %.0f B/conn, stacks %.0f B/conn, goroutines %d",
		server, n, per(rss0, rss1), per(heap0, heap1), per(stack0, stack1), runtime.NumGoroutine())
}

// memNow returns the process's RSS, live heap and goroutine stacks.
func memNow() (rss, heap, stack uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	if len(f) > 1 {
		pages, _ := strconv.ParseUint(f[1], 10, 64)
		rss = pages * uint64(os.Getpagesize())
	}
	return rss, ms.HeapAlloc, ms.StackInuse
}

// idleClientChild opens the connections, says "ready", and holds them
// until its stdin closes.
func idleClientChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NETD_TLS_IDLE_CONNS"))
	der, err := os.ReadFile(os.Getenv("NETD_TLS_IDLE_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	addr := os.Getenv("NETD_TLS_IDLE_ADDR")
	cfg := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if !bytes.Equal(cs.PeerCertificates[0].Raw, der) {
			return errors.New("not the server's certificate")
		}
		return nil
	}}
	conns := make([]net.Conn, 0, n)
	line := []byte("idle\n")
	in := make([]byte, len(line))
	for i := range n {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(line); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
