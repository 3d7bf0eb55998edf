package echo_test

// The loop and echo together over real sockets: a pkg/loop Engine with one
// loop serving the echo module, and a client that talks to it with raw
// blocking system calls, so that the client allocates nothing and every
// allocation counted is the daemon's (the loop goroutine's allocations count
// in runtime.MemStats like any other).
//
//	go test -run '^$' -bench LoopEcho -benchmem ./pkg/modules/echo
//	go test -run '^$' -bench LoopEcho/pingpong/tcp -cpuprofile cpu.out -memprofile mem.out ./pkg/modules/echo

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/looptest"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// lineSize is the size of one echoed line, its '\n' included.
const lineSize = 64

// pipelineDepth is the lines per write in the pipelined case.
const pipelineDepth = 16

// startLoopEcho runs an engine with one loop and a line echo listener on
// network ("tcp" on 127.0.0.1:0, or "unix" in a temporary directory) and
// returns the listener's address. The engine stops at cleanup.
func startLoopEcho(tb testing.TB, network string) string {
	tb.Helper()
	mod := new(echo.Echo)
	if err := apitest.Provision(tb, mod, network, ""); err != nil {
		tb.Fatal(err)
	}
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(tb.TempDir(), "echo.sock")
	}
	l := looptest.Serve(tb, 1, loop.ListenerSpec{Name: "bench", Network: network, Address: addr, Module: mod})
	return l.Addr()
}

// rawClient is a blocking socket driven with read(2) and write(2) only.
type rawClient struct {
	tb   testing.TB
	fd   int
	out  []byte // one batch of lines, as sent
	in   []byte // the echo of one batch
	rbuf []byte
}

// dialRaw connects to addr (tcp://ip:port or unix:///path) with a blocking
// socket and a receive timeout, so that a stuck loop fails the benchmark
// instead of hanging it.
func dialRaw(tb testing.TB, addr string, lines int) *rawClient {
	tb.Helper()
	network, rest, ok := strings.Cut(addr, "://")
	if !ok {
		tb.Fatalf("address %q", addr)
	}
	var (
		fd  int
		err error
		sa  unix.Sockaddr
	)
	switch network {
	case "tcp", "tcp4":
		ap, perr := netip.ParseAddrPort(rest)
		if perr != nil {
			tb.Fatal(perr)
		}
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	case "unix":
		fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrUnix{Name: rest}
	default:
		tb.Fatalf("network %q", network)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		tb.Fatal(err)
	}
	if network != "unix" {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		tb.Fatal(err)
	}
	c := &rawClient{tb: tb, fd: fd, out: make([]byte, lines*lineSize), rbuf: make([]byte, 64<<10)}
	for i := range c.out {
		c.out[i] = 'a' + byte(i%26)
		if i%lineSize == lineSize-1 {
			c.out[i] = '\n'
		}
	}
	c.in = make([]byte, len(c.out))
	return c
}

// roundTrip writes one batch and reads its echo. It reports failure with
// an error string rather than tb.Fatal, so that it allocates nothing on
// success; the caller fails.
func (c *rawClient) roundTrip() string {
	for p := c.out; len(p) > 0; {
		n, err := unix.Write(c.fd, p)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return "write: " + err.Error()
		}
		p = p[n:]
	}
	got := 0
	for got < len(c.in) {
		n, err := unix.Read(c.fd, c.in[got:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return "read: " + err.Error()
		}
		if n == 0 {
			return "read: unexpected EOF"
		}
		got += n
	}
	if string(c.in) != string(c.out) { // compiled to a memcmp; no allocation
		return "echo differs from what was sent"
	}
	return ""
}

func (c *rawClient) mustRoundTrip() {
	if msg := c.roundTrip(); msg != "" {
		c.tb.Fatal(msg)
	}
}

// BenchmarkLoopEcho measures one line through the loop and the echo module
// and back. One op is one echoed line of 64 bytes; allocs/op are the whole
// process's (loop goroutine included) divided by lines.
func BenchmarkLoopEcho(b *testing.B) {
	for _, network := range []string{"tcp", "unix"} {
		for _, bc := range []struct {
			name  string
			lines int
		}{{"pingpong", 1}, {"pipelined16", pipelineDepth}} {
			b.Run(bc.name+"/"+network, func(b *testing.B) {
				addr := startLoopEcho(b, network)
				c := dialRaw(b, addr, bc.lines)
				for range 100 { // warm up: buffers, pools, epoll interest set
					c.mustRoundTrip()
				}
				b.SetBytes(lineSize)
				b.ReportAllocs()
				b.ResetTimer()
				for done := 0; done < b.N; done += bc.lines {
					c.mustRoundTrip()
				}
			})
		}
	}
}

// TestLoopEchoZeroAllocs asserts that echoing a line through the loop and
// the echo module allocates nothing in steady state, in the loop goroutine
// or anywhere else in the process: runtime.MemStats counts every goroutine's
// allocations, and the client (raw system calls into fixed buffers)
// allocates none of its own.
//
// The Go runtime itself sometimes allocates inside the window: when
// ReadMemStats restarts the world it may start one more OS thread
// (runtime.newm: 7 small objects), which has nothing to do with the lines.
// So a window counts up to three times and the quietest must be zero; an
// allocation on the echo path shows in every window (2000 or more times).
// A failing window logs the stacks that allocated in it. The assertion
// holds under the race detector too: its instrumentation allocates outside
// the Go heap.
func TestLoopEchoZeroAllocs(t *testing.T) {
	const roundTrips, windows = 2000, 3
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	for _, network := range []string{"tcp", "unix"} {
		for _, lines := range []int{1, pipelineDepth} {
			addr := startLoopEcho(t, network)
			c := dialRaw(t, addr, lines)
			for range 200 { // warm up: buffers, pools, epoll interest set
				c.mustRoundTrip()
			}
			best, report := uint64(1<<63), ""
			for w := 0; w < windows && best != 0; w++ {
				mallocs, where := allocsInWindow(c, roundTrips)
				if mallocs < best {
					best, report = mallocs, where
				}
			}
			t.Logf("%s, %d line(s) per write: %d allocations over %d lines in the quietest of up to %d windows",
				network, lines, best, roundTrips*lines, windows)
			if best != 0 {
				t.Errorf("%s, %d line(s) per write: %d allocations over %d echoed lines, want 0; allocated at:\n%s",
					network, lines, best, roundTrips*lines, report)
			}
		}
	}
}

// allocsInWindow runs n round trips and returns the process's allocations
// during them and, when there were some, the stacks that made them.
func allocsInWindow(c *rawClient, n int) (uint64, string) {
	// Let the GC and the runtime's background work settle, so that
	// nothing started before lands in the window.
	runtime.GC()
	runtime.GC()
	prof0 := memProfile()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		c.mustRoundTrip()
	}
	runtime.ReadMemStats(&after)
	mallocs := after.Mallocs - before.Mallocs
	if mallocs == 0 {
		return 0, ""
	}
	// The memory profile is as of the last completed GC cycle.
	runtime.GC()
	runtime.GC()
	var b strings.Builder
	for stk, k := range memProfile() {
		if d := k - prof0[stk]; d > 0 && !strings.Contains(stk, "echo_test.memProfile") {
			fmt.Fprintf(&b, "%d at\n%s", d, stk)
		}
	}
	return mallocs, b.String()
}

// memProfile returns the allocations counted so far by stack, as text.
func memProfile() map[string]int64 {
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+100)
	n, _ = runtime.MemProfile(recs, true)
	out := make(map[string]int64, n)
	for _, r := range recs[:n] {
		var b strings.Builder
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			fmt.Fprintf(&b, "\t%s %s:%d\n", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
		out[b.String()] += r.AllocObjects
	}
	return out
}

// BenchmarkLoopIdleConn measures what an idle connection costs the daemon:
// b.N connections each echo one line and stay open. It reports the live
// heap per connection after a GC (live-B/conn), and what accepting and
// serving one cost in allocations (alloc-B/conn, allocs/conn). The client's
// own allocations are none: raw sockets, one reused address. Run it with
// -benchtime 9000x (client and server share the process's descriptors, 2 per connection) and -memprofile to see
// where each byte is allocated.
func BenchmarkLoopIdleConn(b *testing.B) {
	addr := startLoopEcho(b, "tcp")
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	line := []byte(strings.Repeat("x", lineSize-1) + "\n")
	echoBuf := make([]byte, lineSize)
	fds := make([]int, 0, b.N)
	b.Cleanup(func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	})
	// One connection first, so that what any first connection touches is
	// in the baseline.
	warm := dialRaw(b, addr, 1)
	warm.mustRoundTrip()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		if _, err := unix.Write(fd, line); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < lineSize; {
			n, err := unix.Read(fd, echoBuf[got:])
			if err != nil || n == 0 {
				b.Fatal("read:", err)
			}
			got += n
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	allocBytes := after.TotalAlloc - before.TotalAlloc
	allocs := after.Mallocs - before.Mallocs
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "live-B/conn")
	b.ReportMetric(float64(allocBytes)/float64(b.N), "alloc-B/conn")
	b.ReportMetric(float64(allocs)/float64(b.N), "allocs/conn")
}
