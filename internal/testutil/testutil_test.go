package testutil

import (
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer listens on network ("tcp" on 127.0.0.1, or "unix" in a temp
// dir), copies what each client sends back through mangle, half-closes
// at the client's EOF, and returns its bound address as netd reports one.
func echoServer(t *testing.T, network string, mangle func([]byte) []byte) string {
	t.Helper()
	address := "127.0.0.1:0"
	if network == "unix" {
		address = filepath.Join(t.TempDir(), "echo.sock")
	}
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, l, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(mangle(buf[:n])); werr != nil {
					return
				}
			}
			if err != nil {
				_ = HalfClose(c)
				return
			}
		}
	})
	return network + "://" + l.Addr().String()
}

func same(b []byte) []byte { return b }

func TestPollUntil(t *testing.T) {
	n := 0
	if !PollUntil(5*time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("PollUntil stopped after %d calls, want true after 3", n)
	}
	start := time.Now()
	if PollUntil(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("PollUntil = true for a condition that never holds")
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("PollUntil gave up before its bound")
	}
}

func TestSplitAddr(t *testing.T) {
	cases := []struct{ in, network, address string }{
		{"tcp://127.0.0.1:80", "tcp", "127.0.0.1:80"},
		{"tcp4://127.0.0.1:80", "tcp", "127.0.0.1:80"},
		{"tcp6://[::1]:80", "tcp", "[::1]:80"},
		{"udp6://[::1]:53", "udp", "[::1]:53"},
		{"unix:///run/x.sock", "unix", "/run/x.sock"},
	}
	for _, tc := range cases {
		if n, a := SplitAddr(tc.in); n != tc.network || a != tc.address {
			t.Errorf("SplitAddr(%q) = %q, %q; want %q, %q", tc.in, n, a, tc.network, tc.address)
		}
	}
}

// TestConnHelpers: Dial, RoundTrip and CloseWrite against a real echo
// server over TCP and a unix socket; the server sees the half-close.
func TestConnHelpers(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c := Dial(t, echoServer(t, network, same))
			RoundTrip(t, c, "hello\n")
			CloseWrite(t, c)
			if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
				t.Fatalf("after the half-close: %q, %v; want EOF", rest, err)
			}
		})
	}
}

func TestHalfCloseUnsupported(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := HalfClose(a); err == nil || !strings.Contains(err.Error(), "cannot close its writing side") {
		t.Fatalf("HalfClose(net.Pipe) = %v, want an error naming the type", err)
	}
}

// TestSession: a faithful echo passes, one that changes a byte fails
// naming where.
func TestSession(t *testing.T) {
	payload := []byte(strings.Repeat("0123456789abcdef\n", 512))
	if err := Session(Dial(t, echoServer(t, "tcp", same)), payload, payload, 1, 64); err != nil {
		t.Fatalf("faithful echo: %v", err)
	}
	upper := func(b []byte) []byte { return []byte(strings.ToUpper(string(b))) }
	err := Session(Dial(t, echoServer(t, "tcp", upper)), payload, payload, 1, 64)
	if err == nil || !strings.Contains(err.Error(), "first difference at 10") {
		t.Fatalf("mangling echo: %v, want the first difference at 10", err)
	}
}

func TestHostileCycle(t *testing.T) {
	addr := echoServer(t, "tcp", same)
	for i := range 6 {
		if err := HostileCycle(addr, i); err != nil {
			t.Errorf("kind %d: %v", i, err)
		}
	}
}

func TestWaitLog(t *testing.T) {
	var log SyncBuffer
	_, _ = log.Write([]byte("reload: done changed=0\n"))
	mark := log.Len()
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = log.Write([]byte("reload: done changed=2\n"))
	}()
	m := WaitLog(t, &log, regexp.MustCompile(`reload: done changed=(\d)`), mark)
	if m[1] != "2" {
		t.Fatalf("WaitLog past %d matched %q, want the line written after it", mark, m)
	}
}

func TestListeningLine(t *testing.T) {
	cases := []struct {
		name, log string
		want      map[string]string
	}{
		{"key=value", "2026-01-01T00:00:00Z [INFO]  netd: reading config\n2026-01-01T00:00:00Z [INFO]  netd: listening: echo=tcp://127.0.0.1:4000 sock=unix:///tmp/s config=x.yaml\n",
			map[string]string{"echo": "tcp://127.0.0.1:4000", "sock": "unix:///tmp/s"}},
		{"json", `{"@level":"info","@message":"listening","echo":"tcp6://[::1]:4000","config":"x.yaml"}` + "\n",
			map[string]string{"echo": "tcp6://[::1]:4000"}},
		{"none", "netd: starting\n", map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			if line := listeningLine(tc.log); line != "" {
				parseListening(line, got)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("addresses %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("addresses %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestTerminate: a process that exits on SIGTERM ends by it; one that
// ignores SIGTERM is killed after the grace.
func TestTerminate(t *testing.T) {
	cases := []struct {
		name, script string
		want         string
	}{
		{"SIGTERM", "exec sleep 60", "signal: terminated"},
		{"SIGKILL", "trap '' TERM; echo ready; while :; do sleep 0.05; done", "signal: killed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tc.name == "SIGKILL" { // the trap is set once it says so
				if _, err := io.ReadFull(out, make([]byte, 6)); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{})
			var werr error
			go func() { werr = cmd.Wait(); close(done) }()
			Terminate(cmd.Process, done, 300*time.Millisecond)
			if werr == nil || werr.Error() != tc.want {
				t.Fatalf("the process ended with %v, want %s", werr, tc.want)
			}
		})
	}
}
