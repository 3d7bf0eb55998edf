package main_test

// Hostile clients against the real daemon: clients that never read, never
// finish a line, open too many connections, go idle, exhaust the daemon's
// descriptors, vanish mid-write, hold up a shutdown, or send datagrams from
// the ports of the small services. Each test asserts behaviour, never speed;
// every wait is bounded. docs/RELIABILITY.md has the table they back.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/testutil"
)

// mustBeAlive fails the test when the daemon has exited.
func mustBeAlive(t *testing.T, d *testutil.Daemon) {
	t.Helper()
	select {
	case <-d.Done():
		t.Fatalf("netd exited (code %d):\n%s", d.Code(), d.Log())
	default:
	}
	if err := syscall.Kill(d.PID(), 0); err != nil {
		t.Fatalf("netd is gone: %v", err)
	}
}

// mustNotPanic fails the test when the log shows a panic or a stack trace.
func mustNotPanic(t *testing.T, d *testutil.Daemon) {
	t.Helper()
	log := d.Log()
	for _, bad := range []string{"panic", "goroutine ", "SIGPIPE", "fatal error"} {
		if strings.Contains(log, bad) {
			t.Fatalf("the log shows %q:\n%s", bad, log)
		}
	}
}

// procRSSKiB reads VmRSS of pid from /proc, in KiB.
func procRSSKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// peakRSSSampler records the daemon's largest VmRSS until stopped.
type peakRSSSampler struct {
	stop chan struct{}
	done chan int
}

func startPeakRSS(t *testing.T, pid int) *peakRSSSampler {
	s := &peakRSSSampler{stop: make(chan struct{}), done: make(chan int, 1)}
	go func() {
		peak := 0
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
						if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB")); err == nil && n > peak {
							peak = n
						}
					}
				}
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *peakRSSSampler) peak() int {
	close(s.stop)
	return <-s.done
}

// procCPUTicks reads utime+stime of pid, in clock ticks.
func procCPUTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields count from after ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad /proc/PID/stat: %q", s)
	}
	return utime + stime
}

// userHZ is USER_HZ: 100 on every Linux architecture Go supports.
const userHZ = 100

// procFDs returns the daemon's descriptors and the highest one.
func procFDs(t *testing.T, pid int) (count, highest int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading the daemon's descriptors: %v", err)
	}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > highest {
			highest = n
		}
	}
	return len(ents), highest
}

// closedByDaemon reports whether the server closed c (EOF or reset)
// within bound, reading and discarding whatever arrives first.
func closedByDaemon(c net.Conn, bound time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("still open after %v", bound)
		}
		return nil // io.EOF, ECONNRESET: closed
	}
}

// numberedLine is line i of a deterministic stream of 1 KiB lines.
func numberedLine(i int) []byte {
	line := make([]byte, 1024)
	copy(line, fmt.Sprintf("%09d ", i))
	for j := 10; j < 1023; j++ {
		line[j] = byte('a' + (i+j)%26)
	}
	line[1023] = '\n'
	return line
}

const mebibyte = 1 << 20

// TestHostileNonReaderMemoryBounded: a client sends 64 MiB of lines and
// does not read. The daemon stops reading from it past its high watermark
// (1 MiB by default), so its RSS grows by a bounded amount, not by what
// the client sends; a second client is served meanwhile. When the first
// client reads at last, all 64 MiB come back in order: nothing was lost.
func TestHostileNonReaderMemoryBounded(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "shutdown_timeout: 5s\nlisteners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	// Warm up: the read buffers and the output chunk pool exist.
	warm := d.Dial("line")
	for i := 0; i < 64; i++ {
		testutil.RoundTrip(t, warm, string(numberedLine(i)))
	}
	time.Sleep(200 * time.Millisecond)
	base := procRSSKiB(t, d.PID())
	rss := startPeakRSS(t, d.PID())

	const total = 64 * mebibyte
	const lines = total / 1024
	hog := d.Dial("line")
	_ = hog.SetDeadline(time.Time{})
	var written atomic.Int64
	writeErr := make(chan error, 1)
	go func() {
		batch := make([]byte, 0, 64<<10)
		for i := 0; i < lines; {
			batch = batch[:0]
			for ; i < lines && len(batch) < 64<<10; i++ {
				batch = append(batch, numberedLine(i)...)
			}
			n, err := hog.Write(batch)
			written.Add(int64(n))
			if err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	// Wait until the writer stalls: the daemon stopped reading.
	last, still := int64(-1), time.Now()
	stalled := testutil.PollUntil(30*time.Second, func() bool {
		if w := written.Load(); w != last {
			last, still = w, time.Now()
			return false
		}
		return time.Since(still) > time.Second
	})
	if !stalled || written.Load() >= total {
		t.Fatalf("the writer never stalled: %d of %d bytes taken from a client that does not read", written.Load(), total)
	}
	// Meanwhile another client is served.
	other := d.Dial("line")
	_ = other.SetDeadline(time.Now().Add(5 * time.Second))
	testutil.RoundTrip(t, other, "served while another client hogs\n")
	time.Sleep(500 * time.Millisecond)
	peak := rss.peak()
	growth := peak - base
	t.Logf("daemon RSS %d KiB before, peak %d KiB with %d MiB sent and unread (growth %d KiB)", base, peak, written.Load()>>20, growth)
	if growth > 16*1024 {
		t.Fatalf("daemon RSS grew by %d KiB behind a client that does not read (limit 16 MiB)", growth)
	}
	mustBeAlive(t, d)

	// The client reads at last: everything it sent comes back in order.
	_ = hog.SetReadDeadline(time.Now().Add(120 * time.Second))
	r := bufio.NewReaderSize(hog, 64<<10)
	got := make([]byte, 1024)
	for i := 0; i < lines; i++ {
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("line %d of %d: %v", i, lines, err)
		}
		if want := numberedLine(i); !bytes.Equal(got, want) {
			t.Fatalf("line %d: got %q, want %q", i, got[:20], want[:20])
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	mustNotPanic(t, d)
}

// TestHostileEndlessLine: a client sends one line that never ends. Its
// connection closes once max_line_bytes have arrived without a \n, with a
// warning in the log; another client is served before, during and after.
func TestHostileEndlessLine(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n    options:\n      max_line_bytes: 65536\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	other := d.Dial("line")
	testutil.RoundTrip(t, other, "before\n")

	endless := d.Dial("line")
	stop := make(chan struct{})
	var sent atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		chunk := bytes.Repeat([]byte("x"), 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = endless.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := endless.Write(chunk)
			sent.Add(int64(n))
			if err != nil && !isNetTimeout(err) {
				return // reset by the daemon
			}
		}
	}()
	testutil.RoundTrip(t, other, "during\n")
	err := closedByDaemon(endless, 10*time.Second)
	close(stop)
	<-writerDone
	if err != nil {
		t.Fatalf("endless line: connection %v (%d bytes sent)", err, sent.Load())
	}
	if !testutil.PollUntil(5*time.Second, func() bool { return strings.Contains(d.Log(), "line too long") }) {
		t.Fatalf("no line-too-long warning in the log:\n%s", d.Log())
	}
	testutil.RoundTrip(t, other, "after\n")
	testutil.RoundTrip(t, d.Dial("line"), "new client\n")
	mustBeAlive(t, d)
	mustNotPanic(t, d)
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHostileMaxConnections: over a listener's max_connections, and over
// the global max_connections across listeners, a new connection is
// accepted and closed at once; the connections within the limit keep
// echoing; a flood of over-limit connects logs at most about one warning
// a second; and the limits count live connections, so a slot freed is a
// slot usable again.
func TestHostileMaxConnections(t *testing.T) {
	dir := t.TempDir()
	cfg := testutil.WriteConfig(t, "netd.yaml", `
max_connections: 5
listeners:
  - name: lim
    address: tcp://127.0.0.1:0
    module: echo
    max_connections: 3
  - name: other
    address: unix://`+dir+`/other.sock
    module: echo
`)
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	var lim []net.Conn
	for i := 0; i < 3; i++ {
		c := d.Dial("lim")
		testutil.RoundTrip(t, c, fmt.Sprintf("lim %d\n", i))
		lim = append(lim, c)
	}

	t.Run("listener limit", func(t *testing.T) {
		over := d.Dial("lim")
		if err := closedByDaemon(over, 5*time.Second); err != nil {
			t.Fatalf("the 4th connection on a listener with max_connections 3: %v", err)
		}
		// A flood of over-limit connects: all closed, the log not flooded.
		start := time.Now()
		for i := 0; i < 200; i++ {
			c := d.Dial("lim")
			if err := closedByDaemon(c, 5*time.Second); err != nil {
				t.Fatalf("over-limit connection %d: %v", i, err)
			}
			c.Close()
		}
		elapsed := time.Since(start)
		for i, c := range lim {
			testutil.RoundTrip(t, c, fmt.Sprintf("still lim %d\n", i))
		}
		n := strings.Count(d.Log(), "connection limit reached")
		t.Logf("%d limit warnings for 201 refused connections in %v", n, elapsed.Round(time.Millisecond))
		if n == 0 || n > int(elapsed/time.Second)+2 {
			t.Fatalf("%d limit warnings for 201 refused connections in %v: want at least 1 and at most one a second", n, elapsed.Round(time.Millisecond))
		}
	})

	t.Run("global limit", func(t *testing.T) {
		var others []net.Conn
		for i := 0; i < 2; i++ {
			c := d.Dial("other")
			testutil.RoundTrip(t, c, fmt.Sprintf("other %d\n", i))
			others = append(others, c)
		}
		// 3 on lim + 2 on other = the global 5.
		over := d.Dial("other")
		if err := closedByDaemon(over, 5*time.Second); err != nil {
			t.Fatalf("the 6th connection with a global max_connections of 5: %v", err)
		}
		for _, c := range append(lim, others...) {
			testutil.RoundTrip(t, c, "within the limits\n")
		}
		// Free a slot on lim: other can use it, as the limit counts live
		// connections.
		lim[0].Close()
		ok := testutil.PollUntil(5*time.Second, func() bool {
			c := d.Dial("other")
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.WriteString(c, "freed slot\n"); err != nil {
				return false
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			return err == nil && line == "freed slot\n"
		})
		if !ok {
			t.Fatal("a slot freed on one listener never became usable on the other")
		}
	})
	mustBeAlive(t, d)
	mustNotPanic(t, d)
}

// TestHostileIdleTimeout: with idle_timeout 2s, a connection that sends
// nothing, and one that sent half a line and went quiet, are closed; a
// connection that keeps talking is not.
func TestHostileIdleTimeout(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n    idle_timeout: 2s\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	idle := d.Dial("line")
	partial := d.Dial("line")
	if _, err := io.WriteString(partial, "half a line"); err != nil {
		t.Fatal(err)
	}
	busy := d.Dial("line")
	// Talk on busy every 200ms for 5s: two and a half idle timeouts.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		testutil.RoundTrip(t, busy, "keep-alive\n")
		time.Sleep(200 * time.Millisecond)
	}
	for name, c := range map[string]net.Conn{"idle": idle, "partial": partial} {
		if err := closedByDaemon(c, 4*time.Second); err != nil {
			t.Errorf("%s connection after 5s with idle_timeout 2s: %v", name, err)
		}
	}
	testutil.RoundTrip(t, busy, "busy is still served\n")
	mustBeAlive(t, d)
}

// TestHostileDescriptorExhaustion lowers the running daemon's
// RLIMIT_NOFILE to 64 and opens more connections than that allows. The
// daemon survives, logs the accept errors rate-limited, keeps serving the
// connections it holds, does not spin while clients wait in the backlog,
// and serves them by itself once other clients leave.
func TestHostileDescriptorExhaustion(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "loops: 1\nshutdown_timeout: 5s\nlisteners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	pid := d.PID()
	// The limit bounds descriptor numbers, not their count: at most
	// limit-count of them are free below it, whatever else is open.
	count, _ := procFDs(t, pid)
	limit := uint64(64)
	if count+16 > int(limit) {
		limit = uint64(count + 16)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Skipf("cannot lower the daemon's RLIMIT_NOFILE: %v", err)
	}
	const clients = 120
	begin := time.Now()
	conns := make([]net.Conn, 0, clients)
	for i := 0; i < clients; i++ {
		c := d.Dial("line") // completes in the kernel's backlog if not accepted
		conns = append(conns, c)
	}
	if !testutil.PollUntil(10*time.Second, func() bool { return strings.Contains(d.Log(), "accept failed") }) {
		t.Fatalf("no accept error logged with %d clients and RLIMIT_NOFILE %d:\n%s", clients, limit, d.Log())
	}
	// The first client was accepted before the limit hit: still served.
	_ = conns[0].SetDeadline(time.Now().Add(5 * time.Second))
	testutil.RoundTrip(t, conns[0], "served at the limit\n")

	// Idle while clients wait in the backlog: sample the daemon's CPU.
	t0, w0 := procCPUTicks(t, pid), time.Now()
	time.Sleep(2 * time.Second)
	t1, w1 := procCPUTicks(t, pid), time.Now()
	used := time.Duration(t1-t0) * time.Second / userHZ
	if used > w1.Sub(w0)*30/100 {
		t.Errorf("the daemon used %v of CPU in %v at the descriptor limit: it spins", used, w1.Sub(w0).Round(time.Millisecond))
	}
	// Accept retries every few ms at first: without the one-a-second
	// limit on the warning, dozens of lines.
	n := strings.Count(d.Log(), "accept failed")
	if allowed := int(time.Since(begin)/time.Second) + 2; n > allowed {
		t.Errorf("%d accept-error log lines in %v: not rate-limited", n, time.Since(begin).Round(time.Millisecond))
	}
	t.Logf("%d accept-error log lines in %v; CPU %v in %v", n, time.Since(begin).Round(time.Millisecond), used, w1.Sub(w0).Round(time.Millisecond))
	mustBeAlive(t, d)

	// Most clients leave; the last ones, which waited in the backlog, are
	// accepted and served (fewer than the limit lets the daemon hold).
	const waiting = 30
	for _, c := range conns[:clients-waiting] {
		c.Close()
	}
	for i, c := range conns[clients-waiting:] {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		testutil.RoundTrip(t, c, fmt.Sprintf("waited in the backlog %d\n", i))
	}
	for _, c := range conns[clients-waiting:] {
		c.Close()
	}
	testutil.RoundTrip(t, d.Dial("line"), "after the exhaustion\n")
	mustBeAlive(t, d)
	mustNotPanic(t, d)
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, d.Log())
	}
}

// TestHostileConnectCloseBurst: 2000 connect/close cycles of every kind
// (close at once, reset after a round trip, half-close, reset mid-write,
// close with a partial line, close with echoes unread), on TCP and a unix
// socket. The daemon ends up with the descriptors it had before, and the
// well-behaved kinds get every byte back.
func TestHostileConnectCloseBurst(t *testing.T) {
	dir := t.TempDir()
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n  - name: sock\n    address: unix://"+dir+"/s.sock\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	for _, name := range []string{"line", "sock"} {
		testutil.RoundTrip(t, d.Dial(name), "warm\n")
	}
	var before int
	if !testutil.PollUntil(5*time.Second, func() bool {
		n1, _ := procFDs(t, d.PID())
		time.Sleep(100 * time.Millisecond)
		n2, _ := procFDs(t, d.PID())
		before = n2
		return n1 == n2
	}) {
		t.Fatal("the daemon's descriptor count does not settle")
	}
	// The warm-up connections are still open (closed at cleanup): they
	// count in before.
	const cycles, workers = 2000, 16
	next := make(chan int, cycles)
	for i := 0; i < cycles; i++ {
		next <- i
	}
	close(next)
	errs := make(chan error, cycles)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := "line"
				if i%3 == 0 {
					name = "sock"
				}
				if err := testutil.HostileCycle(d.Addrs[name], i); err != nil {
					errs <- fmt.Errorf("cycle %d (kind %d, %s): %w", i, i%6, name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var after int
	if !testutil.PollUntil(15*time.Second, func() bool { after, _ = procFDs(t, d.PID()); return after <= before }) {
		t.Fatalf("the daemon holds %d descriptors after the burst, %d before", after, before)
	}
	testutil.RoundTrip(t, d.Dial("line"), "after the burst\n")
	mustBeAlive(t, d)
	mustNotPanic(t, d)
}

// TestHostileVanishMidWrite: clients that send a lot, read a little (so
// the daemon is busy writing to them) and vanish, by close or by reset.
// The daemon's writes then fail with EPIPE or ECONNRESET, which must close
// those connections only: never a SIGPIPE, never a panic, and everyone
// else is served.
func TestHostileVanishMidWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n  - name: raw\n    address: unix://"+dir+"/raw.sock\n    module: echo\n    options:\n      mode: raw\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	good := d.Dial("line")
	testutil.RoundTrip(t, good, "before\n")
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		name := "line"
		if i%2 == 1 {
			name = "raw"
		}
		c := d.Dial(name)
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write(bytes.Repeat([]byte("the daemon writes this back\n"), 150000))
			}()
			// Read until the daemon is writing to us, then vanish.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.ReadFull(c, make([]byte, 64<<10))
			if tc, ok := c.(*net.TCPConn); ok && i%4 == 0 {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}(i, c)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	mustBeAlive(t, d)
	testutil.RoundTrip(t, good, "after\n")
	testutil.RoundTrip(t, d.Dial("raw"), "raw after")
	mustNotPanic(t, d)
}

// TestHostileShutdownTimeout: on SIGTERM a client that never reads and
// keeps sending could hold its closing connection open (output queued,
// input still arriving); shutdown_timeout (2s) bounds the drain, and the
// daemon exits 0.
func TestHostileShutdownTimeout(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "shutdown_timeout: 2s\nlisteners:\n  - name: line\n    address: tcp://127.0.0.1:0\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	hog := d.Dial("line")
	_ = hog.SetDeadline(time.Time{})
	var progress atomic.Int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		chunk := bytes.Repeat([]byte("never read\n"), 6000)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = hog.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := hog.Write(chunk)
			progress.Add(int64(n))
			if err != nil && !isNetTimeout(err) {
				return
			}
		}
	}()
	defer func() { close(stop); <-writerDone }()
	// Wait for the daemon to stop reading from it.
	last, still := int64(-1), time.Now()
	if !testutil.PollUntil(30*time.Second, func() bool {
		if p := progress.Load(); p != last {
			last, still = p, time.Now()
			return false
		}
		return time.Since(still) > 500*time.Millisecond
	}) {
		t.Fatal("the daemon never stopped reading from a client that does not read")
	}
	start := time.Now()
	d.Signal(syscall.SIGTERM)
	code := d.Wait(15 * time.Second)
	took := time.Since(start)
	t.Logf("exit %d %v after SIGTERM", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, d.Log())
	}
	if took > 7*time.Second {
		t.Fatalf("exit %v after SIGTERM with shutdown_timeout 2s", took.Round(time.Millisecond))
	}
	// The client did hold the drain: it was cut, not finished.
	if !strings.Contains(d.Log(), "drain cut short") {
		t.Fatalf("the drain was not cut by shutdown_timeout; the test did not hold it:\n%s", d.Log())
	}
	mustNotPanic(t, d)
}

// TestHostileUDPReflectorPorts: UDP echo never answers a datagram from a
// port below 1024 (echo 7, discard 9, daytime 13, chargen 19, time 37, and
// the rest of them), so that two reflectors cannot be set bouncing packets
// at each other; it answers the same datagram from an ordinary port.
// Binding a low port needs root: otherwise the test is skipped.
func TestHostileUDPReflectorPorts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binding ports below 1024 needs root")
	}
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: u\n    address: udp://127.0.0.1:0\n    module: echo\n  - name: raw\n    address: udp://127.0.0.1:0\n    module: echo\n    options:\n      mode: raw\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	tested := 0
	for _, name := range []string{"u", "raw"} {
		_, hostport, _ := strings.Cut(d.Addrs[name], "://")
		server, err := net.ResolveUDPAddr("udp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		control, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close()
		for _, port := range []int{7, 9, 13, 19, 37, 1023} {
			low, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				continue // taken on this machine
			}
			tested++
			msg := fmt.Sprintf("from port %d", port)
			if _, err := low.WriteToUDP([]byte(msg), server); err != nil {
				t.Fatal(err)
			}
			// A datagram from an ordinary port, sent after it, comes back:
			// by then the daemon has handled the first (one socket, in order).
			if _, err := control.WriteToUDP([]byte(msg), server); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			_ = control.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := control.ReadFromUDP(buf)
			if err != nil || string(buf[:n]) != msg {
				t.Fatalf("%s: control datagram: %q, %v", name, buf[:n], err)
			}
			_ = low.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _, err := low.ReadFromUDP(buf); err == nil {
				t.Errorf("%s answered a datagram from port %d: %q", name, port, buf[:n])
			}
			low.Close()
		}
	}
	if tested == 0 {
		t.Skip("no port below 1024 could be bound")
	}
	mustBeAlive(t, d)
}

// TestHostileUDPFlood: a client floods the UDP echo with datagrams and
// never reads the replies. The daemon's memory stays bounded (its reply
// queue drops at the door, and the kernel drops what the client does not
// read), and another client is answered afterwards.
func TestHostileUDPFlood(t *testing.T) {
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: u\n    address: udp://127.0.0.1:0\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	probe := d.Dial("u")
	if _, err := io.WriteString(probe, "warm"); err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	base := procRSSKiB(t, d.PID())
	rss := startPeakRSS(t, d.PID())
	flood := d.Dial("u")
	payload := bytes.Repeat([]byte("f"), 1400)
	sent := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && sent < 500000; sent++ {
		_ = flood.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := flood.Write(payload); err != nil && !isNetTimeout(err) {
			var errno syscall.Errno
			if errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == syscall.ENOBUFS) {
				continue
			}
			t.Fatalf("flood write %d: %v", sent, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	peak := rss.peak()
	t.Logf("%d datagrams of %d bytes sent, never read; daemon RSS %d KiB before, peak %d KiB", sent, len(payload), base, peak)
	// The flood costs garbage (socket addresses), which the GC bounds;
	// the race detector's shadow memory triples what that garbage costs.
	limit := 16 * 1024
	if testutil.RaceEnabled {
		limit *= 3
	}
	if peak-base > limit {
		t.Fatalf("daemon RSS grew by %d KiB under a UDP flood (limit %d KiB)", peak-base, limit)
	}
	mustBeAlive(t, d)
	_ = probe.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for attempt := 0; ; attempt++ {
		if _, err := io.WriteString(probe, "after the flood"); err != nil {
			t.Fatal(err)
		}
		_ = probe.SetReadDeadline(time.Now().Add(time.Second))
		n, err := probe.Read(buf)
		if err == nil && string(buf[:n]) == "after the flood" {
			break
		}
		if attempt == 4 { // UDP may drop a datagram; five in a row is not chance
			t.Fatalf("no answer after the flood: %q, %v", buf[:n], err)
		}
	}
	mustNotPanic(t, d)
}
