package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netd/netd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fault selects how a test server misbehaves.
type fault int

const (
	good       fault = iota // a correct line echo: half-close returns the tail, then EOF
	corrupt                 // flips one byte at stream offset 1000 of every connection
	duplicate               // sends its first line twice
	dropTail                // on half-close, drops the unterminated tail and closes
	stall                   // reads everything, never writes
	stallAfter              // echoes the first 4 KiB of every connection, then stops writing
	raw                     // RFC 862 echo with one fixed buffer: allocates nothing per read
)

// startServer runs a line-echo server with the given fault on network
// ("tcp" on 127.0.0.1:0, or "unix" in a temporary directory) until the test
// ends, and returns its address in bench's syntax.
func startServer(t *testing.T, network string, f fault) string {
	t.Helper()
	var ln net.Listener
	var err error
	var addr string
	if network == "unix" {
		path := filepath.Join(t.TempDir(), "echo.sock")
		ln, err = net.Listen("unix", path)
		addr = "unix://" + path
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if ln != nil {
			addr = "tcp://" + ln.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, f)
	return addr
}

// serve serves ln as startServer does, until the test ends.
func serve(t *testing.T, ln net.Listener, f fault) {
	testutil.Serve(t, ln, func(c net.Conn) { serveEcho(c, f) })
}

func serveEcho(c net.Conn, f fault) {
	buf := make([]byte, 32<<10)
	if f == raw {
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	var pending []byte // bytes after the last '\n'
	var off int64      // stream offset of the next byte written
	dupDone := false
	for {
		n, err := c.Read(buf)
		if n > 0 && f != stall {
			data := append(pending, buf[:n]...)
			i := bytes.LastIndexByte(data, '\n')
			var out []byte
			if i >= 0 {
				out = data[:i+1]
				pending = append([]byte(nil), data[i+1:]...)
			} else {
				pending = data
			}
			switch {
			case f == corrupt && off <= 1000 && 1000 < off+int64(len(out)):
				out[1000-off] ^= 0x20
			case f == duplicate && !dupDone && len(out) > 0:
				dupDone = true
				first := out[:bytes.IndexByte(out, '\n')+1]
				out = append(append([]byte(nil), first...), out...)
			case f == stallAfter && off+int64(len(out)) > 4096:
				out = nil
			}
			if len(out) > 0 {
				if _, err := c.Write(out); err != nil {
					return
				}
				off += int64(len(out))
			}
		}
		if err != nil {
			if f == good && len(pending) > 0 {
				c.Write(pending)
			}
			return // returning closes the connection: EOF after everything
		}
	}
}

// checkBound fails the test when the run took longer than d.
func checkBound(t *testing.T, start time.Time, d time.Duration) {
	t.Helper()
	if took := time.Since(start); took > d {
		t.Errorf("run took %v, more than %v", took, d)
	}
}

func TestCorrectServer(t *testing.T) {
	cases := []struct {
		name    string
		network string
		o       Options
	}{
		{"tcp ping-pong", "tcp", Options{Conns: 4}},
		{"unix ping-pong", "unix", Options{Conns: 4}},
		{"tcp pipelined", "tcp", Options{Conns: 4, InFlight: 16}},
		{"tcp soak", "tcp", Options{Conns: 8, InFlight: 8, LineSize: 300, RandomLines: true,
			Fragment: true, HalfClose: 0.5, Reconnect: true, CycleLines: 40}},
		{"unix soak", "unix", Options{Conns: 8, InFlight: 4, LineSize: 100, RandomLines: true,
			Fragment: true, HalfClose: 1, Reconnect: true, CycleLines: 20}},
		// Batches of 256 KiB: written by a second goroutine while the first reads.
		{"unix large lines", "unix", Options{Conns: 2, InFlight: 4, LineSize: 64 << 10}},
		{"tcp large random lines", "tcp", Options{Conns: 2, InFlight: 8, LineSize: 64 << 10, RandomLines: true, HalfClose: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Address = startServer(t, tc.network, good)
			o.Duration = 500 * time.Millisecond
			o.ServerPID = os.Getpid() // the server runs in this process
			var log bytes.Buffer
			o.Log = &log
			start := time.Now()
			r, err := Run(context.Background(), o)
			checkBound(t, start, 3*time.Second)
			if err != nil {
				t.Fatalf("Run: %v\nlog: %s", err, log.String())
			}
			if r.Lines == 0 || r.Mismatches != 0 || r.Errors != 0 || r.ConnectErrors != 0 {
				t.Errorf("lines %d, mismatches %d, errors %d (%s), connect errors %d",
					r.Lines, r.Mismatches, r.Errors, r.FirstError, r.ConnectErrors)
			}
			if r.BytesSent != r.BytesVerified {
				t.Errorf("sent %d bytes, verified %d", r.BytesSent, r.BytesVerified)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.P999 || r.P999 > r.Max || r.Min > r.P50 {
				t.Errorf("latencies out of order: min %v p50 %v p99 %v p999 %v max %v", r.Min, r.P50, r.P99, r.P999, r.Max)
			}
			if o.HalfClose > 0 && r.HalfCloses == 0 {
				t.Errorf("no half-close verified")
			}
			if o.Reconnect && r.Connects <= int64(o.Conns) {
				t.Errorf("%d connects with reconnect on", r.Connects)
			}
			if r.ServerPeakRSS <= 0 || r.ServerMaxRSS <= 0 {
				t.Errorf("server RSS not sampled: peak %d max %d", r.ServerPeakRSS, r.ServerMaxRSS)
			}
			if log.Len() > 0 {
				t.Errorf("log: %s", log.String())
			}
		})
	}
}

func TestLinesLimit(t *testing.T) {
	addr := startServer(t, "tcp", good)
	r, err := Run(context.Background(), Options{Address: addr, Conns: 3, InFlight: 7, Lines: 100, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != 300 {
		t.Errorf("lines %d, want 300", r.Lines)
	}
	if r.Elapsed > 2*time.Second {
		t.Errorf("took %v: did not stop after its lines", r.Elapsed)
	}
}

func TestFaultyServers(t *testing.T) {
	cases := []struct {
		name  string
		fault fault
		o     Options
		log   string // expected in the mismatch log
	}{
		{"corrupt byte", corrupt, Options{InFlight: 4}, "mismatch at stream byte 1000"},
		{"corrupt byte, fragmented random lines", corrupt, Options{InFlight: 4, RandomLines: true, Fragment: true}, "mismatch at stream byte 1000"},
		{"duplicated line", duplicate, Options{InFlight: 2}, "at stream byte"},
		{"tail dropped on half-close", dropTail, Options{InFlight: 4, HalfClose: 1, Reconnect: true, CycleLines: 10}, "after half-close the server closed"},
		// Without Reconnect the one half-close comes at the end of the run.
		{"tail dropped at the end", dropTail, Options{HalfClose: 1}, "unterminated tail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Address = startServer(t, "tcp", tc.fault)
			o.Conns = 3
			o.Duration = 300 * time.Millisecond
			var log bytes.Buffer
			o.Log = &log
			start := time.Now()
			r, err := Run(context.Background(), o)
			checkBound(t, start, 3*time.Second)
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("Run error %v, want ErrMismatch", err)
			}
			if r.Mismatches == 0 {
				t.Errorf("no mismatch counted")
			}
			if !strings.Contains(log.String(), tc.log) || !strings.Contains(r.FirstMismatch, tc.log) {
				t.Errorf("log %q, first mismatch %q: want %q", log.String(), r.FirstMismatch, tc.log)
			}
			// Logged once per connection slot, not once per mismatch.
			if n := strings.Count(log.String(), "\n"); n > o.Conns {
				t.Errorf("%d log lines for %d connections", n, o.Conns)
			}
		})
	}

	// The same tail-dropping server passes when no half-close is asked for:
	// it is the half-close check that catches it.
	addr := startServer(t, "tcp", dropTail)
	r, err := Run(context.Background(), Options{Address: addr, Conns: 2, Duration: 200 * time.Millisecond})
	if err != nil || r.Mismatches != 0 {
		t.Errorf("without half-close: %v, %d mismatches", err, r.Mismatches)
	}
}

func TestServerStopsAnswering(t *testing.T) {
	const d, timeout = 300 * time.Millisecond, 500 * time.Millisecond
	t.Run("never answers", func(t *testing.T) {
		addr := startServer(t, "tcp", stall)
		start := time.Now()
		r, err := Run(context.Background(), Options{Address: addr, Conns: 4, Duration: d, Timeout: timeout})
		checkBound(t, start, d+timeout+time.Second)
		if !errors.Is(err, ErrNothingEchoed) {
			t.Errorf("Run error %v, want ErrNothingEchoed", err)
		}
		if r.Errors == 0 || !strings.Contains(r.FirstError, "timeout") {
			t.Errorf("errors %d (%q), want time-outs", r.Errors, r.FirstError)
		}
	})
	t.Run("stops after a while", func(t *testing.T) {
		addr := startServer(t, "unix", stallAfter)
		start := time.Now()
		// The default Timeout (5s) is cut to the run's grace period.
		r, err := Run(context.Background(), Options{Address: addr, Conns: 4, InFlight: 4, Duration: d})
		checkBound(t, start, d+maxGrace+time.Second)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if r.Lines == 0 || r.Errors == 0 || r.Mismatches != 0 {
			t.Errorf("lines %d, errors %d, mismatches %d", r.Lines, r.Errors, r.Mismatches)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		addr := closedAddr(t)
		start := time.Now()
		r, err := Run(context.Background(), Options{Address: addr, Conns: 2, Duration: d, Timeout: timeout})
		checkBound(t, start, timeout+time.Second)
		if !errors.Is(err, ErrNotListening) || !strings.Contains(err.Error(), "refused") || r.Connects != 0 {
			t.Errorf("Run error %v, connects %d; want ErrNotListening, refused, nothing run", err, r.Connects)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := Run(ctx, Options{Address: closedAddr(t), Duration: d, Timeout: time.Minute})
		checkBound(t, start, 1500*time.Millisecond)
		if !errors.Is(err, ErrNotListening) || !errors.Is(err, context.Canceled) {
			t.Errorf("Run error %v, want ErrNotListening and context.Canceled", err)
		}
	})
}

// closedAddr is a host:port (no scheme) on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestWaitsForService: a run started before its server listens waits for
// it and then runs without a connect error, as in the README's
// `netd serve & netd bench`.
func TestWaitsForService(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.sock")
	listening := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() {
		defer close(listening)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Error(err)
			return
		}
		serve(t, ln, good)
	})
	r, err := Run(context.Background(), Options{Address: "unix://" + path, Conns: 4, Duration: 300 * time.Millisecond})
	<-listening
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Lines == 0 || r.ConnectErrors != 0 || r.Connects != 4 {
		t.Errorf("lines %d, connects %d, connect errors %d (%s); want lines, 4 connects and no connect error",
			r.Lines, r.Connects, r.ConnectErrors, r.FirstConnectErr)
	}
}

func TestCancel(t *testing.T) {
	addr := startServer(t, "tcp", good)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	r, err := Run(ctx, Options{Address: addr, Conns: 8, Duration: time.Minute})
	checkBound(t, start, 1500*time.Millisecond)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !r.Interrupted || r.Lines == 0 || r.Errors != 0 || r.Mismatches != 0 {
		t.Errorf("interrupted %v, lines %d, errors %d (%s), mismatches %d",
			r.Interrupted, r.Lines, r.Errors, r.FirstError, r.Mismatches)
	}
}

func TestProgressAndReport(t *testing.T) {
	addr := startServer(t, "tcp", good)
	var progress bytes.Buffer
	r, err := Run(context.Background(), Options{Address: addr, Conns: 2, Duration: 1100 * time.Millisecond,
		Progress: &progress, ServerPID: os.Getpid(), Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "lines/s") {
		t.Errorf("progress: %q", progress.String())
	}
	var text bytes.Buffer
	r.WriteText(&text)
	for _, want := range []string{"lines/s", "p99", "mismatches   0", "server       pid", "seed 42"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Lines != r.Lines || back.P99 != r.P99 || back.Options.Seed != 42 {
		t.Errorf("JSON round trip: %v, %s", err, b)
	}
}

func TestDefaults(t *testing.T) {
	o, err := Options{Address: "127.0.0.1:8888"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Conns != 64 || o.LineSize != 64 || o.InFlight != 1 || o.Duration != 10*time.Second ||
		o.Timeout != DefaultTimeout || o.CycleLines != DefaultCycleLines || o.Seed == 0 {
		t.Errorf("defaults not applied: %+v", o)
	}
	set := Options{Address: "x:1", Conns: 3, LineSize: 9, InFlight: 16, Duration: time.Second, Seed: 7}
	if o, _ := set.withDefaults(); o.Conns != 3 || o.LineSize != 9 || o.InFlight != 16 || o.Duration != time.Second || o.Seed != 7 {
		t.Errorf("set values changed: %+v", o)
	}
	for _, bad := range []Options{
		{},
		{Address: "ftp://x:1"},
		{Address: "x:1", Conns: -1},
		{Address: "x:1", LineSize: -5},
		{Address: "x:1", InFlight: -1},
		{Address: "x:1", Duration: -time.Second},
		{Address: "x:1", HalfClose: 1.5},
		{Address: "x:1", Lines: -1},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
		if _, err := Run(context.Background(), bad); err == nil || errors.Is(err, ErrNothingEchoed) {
			t.Errorf("Run(%+v): %v, want an options error", bad, err)
		}
	}
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"tcp://127.0.0.1:8888", "tcp", "127.0.0.1:8888"},
		{"tcp6://[::1]:8888", "tcp6", "[::1]:8888"},
		{"tcp4://localhost:1", "tcp4", "localhost:1"},
		{"localhost:8888", "tcp", "localhost:8888"},
		{":8888", "tcp", "localhost:8888"},
		{"8888", "tcp", "127.0.0.1:8888"},
		{"unix:///run/netd.sock", "unix", "/run/netd.sock"},
		{"/tmp/x.sock", "unix", "/tmp/x.sock"},
	} {
		n, a, err := parseAddress(tc.in)
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, n, a, err, tc.network, tc.addr)
		}
	}
	for _, bad := range []string{"", "localhost", "tcp://x", "tcp://x:0", "tcp://x:70000", "unix://", "udp://x:1"} {
		if _, _, err := parseAddress(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLineContents(t *testing.T) {
	mk := func(random bool, seed int64) *worker {
		o, _ := Options{Address: "x:1", RandomLines: random, LineSize: 200, Seed: seed}.withDefaults()
		return newWorker(&runner{o: o}, 3)
	}
	// Same seed, same slot: the same bytes. Another seed: others.
	a, b, c := mk(true, 5), mk(true, 5), mk(true, 6)
	pa, pb, pc := make([]byte, 4096), make([]byte, 4096), make([]byte, 4096)
	a.fill(pa)
	b.fill(pb)
	c.fill(pc)
	if !bytes.Equal(pa, pb) || bytes.Equal(pa, pc) {
		t.Errorf("contents not determined by the seed")
	}
	if bytes.IndexByte(pa, '\n') >= 0 {
		t.Errorf("random line content holds a newline")
	}
	for _, want := range []byte{0, '\r', 0xff} {
		if bytes.IndexByte(pa, want) < 0 {
			t.Errorf("random content never holds %#x", want)
		}
	}
	p := mk(false, 5)
	pp := make([]byte, 4096)
	p.fill(pp)
	for _, ch := range pp {
		if !strings.ContainsRune(printable, rune(ch)) {
			t.Fatalf("non-printable byte %#x in a plain line", ch)
		}
	}
	// Random lengths cover 1..LineSize.
	seen := map[int]bool{}
	for range 20000 {
		n := a.lineLen()
		if n < 1 || n > 200 {
			t.Fatalf("line length %d", n)
		}
		seen[n] = true
	}
	if len(seen) != 200 {
		t.Errorf("%d distinct lengths of 200", len(seen))
	}
}

// TestExchangeAllocs checks that the steady state allocates nothing per
// exchange: buffers are the connection's own, the histogram is fixed.
func TestExchangeAllocs(t *testing.T) {
	addr := startServer(t, "tcp", raw)
	for _, o := range []Options{
		{InFlight: 1},
		{InFlight: 16, RandomLines: true, Fragment: true, LineSize: 200},
	} {
		o.Address = addr
		o.Duration = time.Minute
		o, err := o.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		network, a, _ := parseAddress(addr)
		now := time.Now()
		r := &runner{o: o, network: network, addr: a, ctx: context.Background(),
			start: now, endAt: now.Add(time.Minute), hardEnd: now.Add(time.Minute + time.Second)}
		w := newWorker(r, 0)
		c, err := w.dial()
		if err != nil {
			t.Fatal(err)
		}
		for range 50 { // warm up
			if !w.exchange(c, o.InFlight, false) {
				t.Fatalf("exchange failed: %s %s", r.firstErr, r.firstMismatch)
			}
		}
		allocs := testing.AllocsPerRun(500, func() {
			if !w.exchange(c, o.InFlight, false) {
				t.Fatalf("exchange failed: %s %s", r.firstErr, r.firstMismatch)
			}
		})
		c.Close()
		if allocs != 0 {
			t.Errorf("in flight %d: %v allocations per exchange", o.InFlight, allocs)
		}
		// AllocsPerRun runs the function once more to warm up.
		if w.hist.Count() != uint64(551*o.InFlight) {
			t.Errorf("%d latencies recorded for %d lines", w.hist.Count(), 551*o.InFlight)
		}
	}
}

func TestProcParsing(t *testing.T) {
	cpu, err := parseStatCPU([]byte("123 (a (weird) name) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 1000 100"))
	if err != nil || cpu != 3*time.Second {
		t.Errorf("cpu %v %v, want 3s", cpu, err)
	}
	rss, hwm, err := parseStatusRSS([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if err != nil || rss != 1<<20 || hwm != 2<<20 {
		t.Errorf("rss %d hwm %d %v", rss, hwm, err)
	}
	if _, _, err := parseStatusRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Errorf("no error without VmRSS")
	}
}
