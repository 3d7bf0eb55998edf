package loop

// Hostile clients against the loop itself: peers that reset with output
// queued, bursts of connect/close cycles, descriptor exhaustion, modules
// that hoard input, slow readers of a closing connection, idle clients that
// never read, and a full datagram queue. Each test asserts behaviour (what
// is closed, what is kept, what is counted), never speed, and every wait is
// bounded. See docs/RELIABILITY.md for the table these tests back.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

func hostileLogger(buf *testutil.SyncBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug})
}

// countOwnFDs counts this process's descriptors.
func countOwnFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// fillUntilPaused writes lines to c, never reading, until the server stops
// reading (a write makes no progress for stall) or limit bytes are written.
// It returns the bytes written, and the error that ended the writing when
// it was not the stall.
func fillUntilPaused(c net.Conn, stall time.Duration, limit int) (int, error) {
	line := append(bytes.Repeat([]byte("q"), 1023), '\n')
	written := 0
	defer func() { _ = c.SetWriteDeadline(time.Time{}) }()
	for written < limit {
		_ = c.SetWriteDeadline(time.Now().Add(stall))
		n, err := c.Write(line)
		written += n
		if err != nil {
			if isNetTimeout(err) {
				return written, nil
			}
			return written, err
		}
	}
	return written, nil
}

// TestHostileResetWithOutputQueued: a client that never reads drives its
// connection past the high watermark (reads paused, output queued), then
// resets. The loop must close that connection alone, discarding its queue,
// tell the module, and keep serving everyone else.
func TestHostileResetWithOutputQueued(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			mod := &lineEcho{closed: make(chan api.Reason, 4)}
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = unixPath(t)
			}
			e, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: network, Address: addr, Module: mod, HighWatermark: 64 << 10})
			good := dial(t, l)
			testutil.RoundTrip(t, good, "before\n")

			bad := dial(t, l)
			written, err := fillUntilPaused(bad, 500*time.Millisecond, 256<<20)
			if err != nil {
				t.Fatalf("the server closed a connection it should have paused, after %d bytes: %v", written, err)
			}
			if written >= 256<<20 {
				t.Fatalf("server took %d bytes from a client that never reads", written)
			}
			if !testutil.PollUntil(5*time.Second, func() bool { return l.Stats().ReadsPaused > 0 }) {
				t.Fatalf("reads never paused: %+v", l.Stats())
			}
			if tc, ok := bad.(*net.TCPConn); ok {
				if err := tc.SetLinger(0); err != nil {
					t.Fatal(err)
				}
			}
			// A unix socket closed with unread data also makes the server's
			// writes fail (EPIPE / ECONNRESET): the same path.
			bad.Close()
			select {
			case r := <-mod.closed:
				if r != api.ReasonError && r != api.ReasonClient {
					t.Fatalf("reset connection closed with reason %q, want error or client", r)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the loop did not notice the reset within 5s; active=%d", l.ActiveConnections())
			}
			if !testutil.PollUntil(5*time.Second, func() bool { return e.ActiveConnections() == 1 }) {
				t.Fatalf("active connections = %d, want only the good one", e.ActiveConnections())
			}
			testutil.RoundTrip(t, good, "after\n")
			testutil.RoundTrip(t, dial(t, l), "new client\n")
		})
	}
}

// TestHostileConnectCloseBurst runs 2000 connect/close cycles of every
// kind a hostile or broken client produces, concurrently: close at once,
// reset after a round trip, half-close, reset in the middle of a large
// write with echoes queued, close with a partial line, close without
// reading a large echo. Afterwards every connection is gone and the
// process holds no more descriptors than before; the well-behaved kinds
// get every byte back.
func TestHostileConnectCloseBurst(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = unixPath(t)
			}
			e, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: network, Address: addr, Module: &lineEcho{}, HighWatermark: 32 << 10})
			// Warm up: the runtime's poller and the loops' tables exist
			// before the count starts.
			warm := dial(t, l)
			testutil.RoundTrip(t, warm, "warm\n")
			warm.Close()
			if !testutil.PollUntil(5*time.Second, func() bool { return e.ActiveConnections() == 0 }) {
				t.Fatal("warm-up connection never closed")
			}
			before := countOwnFDs(t)

			const cycles, workers = 2000, 16
			var wg sync.WaitGroup
			errs := make(chan error, cycles)
			next := make(chan int, cycles)
			for i := 0; i < cycles; i++ {
				next <- i
			}
			close(next)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						if err := testutil.HostileCycle(l.Addr(), i); err != nil {
							errs <- fmt.Errorf("cycle %d (kind %d): %w", i, i%6, err)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if !testutil.PollUntil(15*time.Second, func() bool { return e.ActiveConnections() == 0 }) {
				t.Fatalf("%d connections still open 15s after the burst", e.ActiveConnections())
			}
			after := 0
			if !testutil.PollUntil(5*time.Second, func() bool { after = countOwnFDs(t); return after <= before }) {
				t.Fatalf("descriptors: %d before the burst, %d after", before, after)
			}
			s := l.Stats()
			var closed uint64
			for _, n := range s.Closed {
				closed += n
			}
			if s.Accepted != cycles+1 || closed != s.Accepted {
				t.Fatalf("accepted %d, closed %d (%v); want %d each", s.Accepted, closed, s.Closed, cycles+1)
			}
			testutil.RoundTrip(t, dial(t, l), "still serving\n")
		})
	}
}

// TestHostileDescriptorExhaustion: with the process out of descriptors,
// accept fails with EMFILE. The loop must pause that listener with a
// backoff rather than spin (few accept attempts, little CPU), log the
// error rate-limited, keep serving the connections it has, and accept the
// clients waiting in the backlog by itself once descriptors free up.
func TestHostileDescriptorExhaustion(t *testing.T) {
	var logs testutil.SyncBuffer
	e, err := New(Config{Loops: 2, Logger: hostileLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	}()
	l, err := e.Listen(ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	if err != nil {
		t.Fatal(err)
	}
	// Clients connect before the engine starts: they wait in the backlog.
	const clients = 40
	network, address := testutil.SplitAddr(l.Addr())
	conns := make([]net.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.DialTimeout(network, address, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		conns = append(conns, c)
	}

	// Lower the soft limit just above the descriptors in use and take
	// every free number with /dev/null, then give three back.
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	highest := 0
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, ent := range ents {
		var fd int
		if _, err := fmt.Sscan(ent.Name(), &fd); err == nil && fd > highest {
			highest = fd
		}
	}
	lowered := orig
	lowered.Cur = uint64(highest + 1 + clients + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	defer func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) }()
	var hog []int
	release := func(n int) {
		for ; n > 0 && len(hog) > 0; n-- {
			_ = unix.Close(hog[len(hog)-1])
			hog = hog[:len(hog)-1]
		}
	}
	defer release(len(hog) + 1<<20)
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if err != unix.EMFILE {
				t.Fatalf("hogging descriptors: %v", err)
			}
			break
		}
		hog = append(hog, fd)
	}
	const free = 3
	release(free)

	begin := time.Now()
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if !testutil.PollUntil(5*time.Second, func() bool { return l.Stats().AcceptErrors > 0 }) {
		t.Fatalf("no accept error with descriptors exhausted: %+v", l.Stats())
	}
	if n := l.ActiveConnections(); n > free || n == 0 {
		t.Fatalf("%d connections accepted with %d descriptors free", n, free)
	}
	// The first client in the backlog was accepted and is served while
	// the listener is paused.
	testutil.RoundTrip(t, conns[0], "served while paused\n")

	// Hold the exhaustion for a while: the loop must sleep through it.
	var ru0, ru1 unix.Rusage
	errs0 := l.Stats().AcceptErrors
	start := time.Now()
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	time.Sleep(1500 * time.Millisecond)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	wall := time.Since(start)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
	errs1 := l.Stats().AcceptErrors
	if cpu > wall*30/100 {
		t.Errorf("the process used %v of CPU in %v while accept was paused: the loop spins", cpu, wall)
	}
	// Backoff doubles from 5ms to 1s: a handful of retries per loop and
	// second, never thousands.
	if d := errs1 - errs0; d > 20 {
		t.Errorf("%d accept errors in %v: no backoff", d, wall)
	}
	// Without the one-a-second limit, a line per retry: a dozen or more.
	if n, allowed := strings.Count(logs.String(), "accept failed"), int(time.Since(begin)/time.Second)+2; n == 0 || n > allowed {
		t.Errorf("%d accept-error log lines in %v, want 1 to %d (rate-limited):\n%s", n, time.Since(begin).Round(time.Millisecond), allowed, logs.String())
	}

	// Descriptors come back: every client in the backlog is accepted and
	// served, with no help.
	release(len(hog))
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line := fmt.Sprintf("client %d after the exhaustion\n", i)
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		got, err := bufio.NewReader(io.LimitReader(c, int64(len(line)))).ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("client %d never served after descriptors came back: %q, %v", i, got, err)
		}
	}
	if n := l.ActiveConnections(); n != clients {
		t.Fatalf("active = %d, want %d", n, clients)
	}
}

// inputHoarder never consumes its input: the kind of module the loop's general
// input bound (MaxInput) exists for.
type inputHoarder struct{ lineEcho }

func (h *inputHoarder) OnReadable(api.Conn) {}

// TestHostileInputBound: a module that buffers without consuming cannot
// make the loop hold more than MaxInput (plus one read) for a connection:
// the connection is aborted with reason error, and the others go on.
func TestHostileInputBound(t *testing.T) {
	mod := &inputHoarder{lineEcho{closed: make(chan api.Reason, 4)}}
	var logs testutil.SyncBuffer
	_, l := startEngine(t, Config{Loops: 1, Logger: hostileLogger(&logs)}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: mod, MaxInput: 64 << 10})
	other := dial(t, l)
	c := dial(t, l)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(bytes.Repeat([]byte("x"), 8<<20))
	}()
	select {
	case r := <-mod.closed:
		if r != api.ReasonError {
			t.Fatalf("reason %q, want error", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a connection past MaxInput was not closed")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the client never saw its connection close")
		}
	}
	if !strings.Contains(logs.String(), "input bound exceeded") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
	if l.ActiveConnections() != 1 {
		t.Fatalf("active = %d, want 1", l.ActiveConnections())
	}
	_ = other.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := other.Write([]byte("still open\n")); err != nil {
		t.Fatal(err)
	}
}

// closeAfterBurst writes size bytes on accept, then closes gracefully: the close
// must flush within the linger bounds.
type closeAfterBurst struct {
	lineEcho
	size    int
	closing chan time.Time // when Close was called
}

func (b *closeAfterBurst) OnAccept(c api.Conn) {
	// A small send buffer makes the kernel report progress often, so that
	// the linger's quiet period never runs out while the client reads.
	_ = unix.SetsockoptInt(int(c.(*conn).fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10)
	_, _ = c.Write(bytes.Repeat([]byte("slow reader\n"), b.size/12))
	_ = c.Close()
	b.closing <- time.Now()
}

// TestHostileSlowReaderOfClosingConn: a graceful close flushes queued
// output "with a deadline" (api.Conn.Close); Config.LingerTimeout "bounds
// a graceful close whatever the peer does". A client that reads just fast
// enough to keep making progress must not hold a closing connection (and
// its queue) open past LingerTimeout.
func TestHostileSlowReaderOfClosingConn(t *testing.T) {
	mod := &closeAfterBurst{lineEcho: lineEcho{closed: make(chan api.Reason, 1)}, size: 48 << 20, closing: make(chan time.Time, 1)}
	_, l := startEngine(t, Config{Loops: 1, LingerQuiet: 500 * time.Millisecond, LingerTimeout: 1500 * time.Millisecond},
		ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: mod})
	c := dial(t, l)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // about 3 MiB/s: steady progress, for longer than the test
		defer close(readerDone)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil && !isNetTimeout(err) {
				return
			}
		}
	}()
	defer func() { close(stop); <-readerDone }()
	// Queuing 48 MiB can take seconds under the race detector on a busy
	// machine: the bound runs from the Close, not from the connect.
	var start time.Time
	select {
	case start = <-mod.closing:
	case <-time.After(60 * time.Second):
		t.Fatal("the module did not get to Close within 60s")
	}
	select {
	case <-mod.closed:
	case <-time.After(6 * time.Second):
		t.Fatalf("a closing connection with a slow reader was still open after %v (LingerTimeout 1.5s): "+
			"LingerTimeout is enforced only while discarding input (conn.discardInput), not while flushing",
			time.Since(start).Round(time.Millisecond))
	}
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHostileIdleNonReader: a client that fills its connection until the
// loop pauses reading, then goes silent and never reads, holds the queue
// only until idle_timeout: then the connection is closed and its queue
// freed. A busy client on the same listener is not touched.
func TestHostileIdleNonReader(t *testing.T) {
	mod := &lineEcho{closed: make(chan api.Reason, 4)}
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: mod, IdleTimeout: time.Second, HighWatermark: 64 << 10})
	stuck := dial(t, l)
	// The idle timeout may strike while the client still writes (a loaded
	// machine can stall it longer than the timeout): that is a close too.
	if written, err := fillUntilPaused(stuck, 200*time.Millisecond, 256<<20); written >= 256<<20 {
		t.Fatalf("server took %d bytes from a client that never reads (%v)", written, err)
	}
	busy := dial(t, l)
	deadline := time.Now().Add(5 * time.Second)
	var reason api.Reason
	for reason == "" && time.Now().Before(deadline) {
		testutil.RoundTrip(t, busy, "ping\n")
		select {
		case reason = <-mod.closed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if reason != api.ReasonIdleTimeout {
		t.Fatalf("the stuck connection: reason %q after 5s, want idle_timeout", reason)
	}
	testutil.RoundTrip(t, busy, "busy is still open\n")
	if l.ActiveConnections() != 1 {
		t.Fatalf("active = %d, want 1", l.ActiveConnections())
	}
}

// TestHostileUDPQueueDropsAtTheDoor drives the datagram socket's reply
// queue past its bounds (1024 datagrams, 4 MiB) on the loop itself: every
// reply over a bound is dropped and counted, the queue never grows past
// them, and once the loop runs again the queue drains to the client in
// order and EPOLLOUT is dropped (no spin on an empty queue).
func TestHostileUDPQueueDropsAtTheDoor(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "u", Network: "udp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := client.LocalAddr().(*net.UDPAddr).AddrPort()
	ps := l.packetSock
	got := make(chan string, 8192)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := client.ReadFromUDP(buf)
			if err != nil {
				close(got)
				return
			}
			select {
			case got <- string(buf[:n]):
			default:
			}
		}
	}()

	cases := []struct {
		name    string
		size    int
		accepts int // replies queued after the blocker
	}{
		{"count bound", 16, maxQueuedPackets - 1},
		{"byte bound", 32 << 10, (maxQueuedPktBytes - 32<<10) / (32 << 10)},
	}
	for _, tc := range cases {
		var queued, dropped, maxLen, maxBytes int
		before := l.Stats()
		err := ps.loop.call(func() error {
			// The kernel would take every datagram on loopback; a queued
			// blocker makes WriteTo queue as when it says EAGAIN.
			blocker := bytes.Repeat([]byte("b"), tc.size)
			ps.queue = append(ps.queue, queuedPacket{data: blocker, to: addrPortToSockaddr(to, ps.v6)})
			ps.queued += len(blocker)
			ps.setInterest(unix.EPOLLIN | unix.EPOLLOUT)
			for i := 0; i < tc.accepts+100; i++ {
				p := bytes.Repeat([]byte{'a' + byte(i%26)}, tc.size)
				switch err := ps.WriteTo(p, to); {
				case err == nil:
					queued++
				case errors.Is(err, api.ErrQueueFull):
					dropped++
				default:
					return err
				}
				maxLen = max(maxLen, len(ps.queue))
				maxBytes = max(maxBytes, ps.queued)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if queued != tc.accepts || dropped != 100 {
			t.Errorf("%s: %d queued, %d dropped; want %d and 100", tc.name, queued, dropped, tc.accepts)
		}
		if maxLen > maxQueuedPackets || maxBytes > maxQueuedPktBytes {
			t.Errorf("%s: queue reached %d datagrams, %d bytes", tc.name, maxLen, maxBytes)
		}
		if d := l.Stats().Dropped - before.Dropped; d != 100 {
			t.Errorf("%s: Dropped grew by %d, want 100", tc.name, d)
		}
		var left int
		var events uint32
		ok := testutil.PollUntil(5*time.Second, func() bool {
			_ = ps.loop.call(func() error { left, events = len(ps.queue), ps.interest; return nil })
			return left == 0 && events == unix.EPOLLIN
		})
		if !ok {
			t.Fatalf("%s: queue never drained: %d left, events %#x", tc.name, left, events)
		}
		if d := l.Stats().DatagramsOut - before.DatagramsOut; d != uint64(tc.accepts+1) {
			t.Errorf("%s: %d datagrams sent from the queue, want %d", tc.name, d, tc.accepts+1)
		}
	}
	// The socket still echoes.
	c := dial(t, l)
	if _, err := c.Write([]byte("after the flood")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "after the flood" {
		t.Fatalf("echo after the flood: %q, %v", buf[:n], err)
	}
	client.Close()
	for range got {
	}
}
