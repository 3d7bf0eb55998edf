package loop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// TestStreamEcho runs the line-echo module over every stream network and
// loop count: fragmented lines, many lines per read, binary bytes, and a
// half-close that must return the unterminated tail.
func TestStreamEcho(t *testing.T) {
	for _, loops := range []int{1, 2} {
		for _, network := range []string{"tcp4", "tcp6", "unix"} {
			t.Run(fmt.Sprintf("%s/loops=%d", network, loops), func(t *testing.T) {
				addr := "127.0.0.1:0"
				switch network {
				case "tcp6":
					addr = "[::1]:0"
				case "unix":
					addr = unixPath(t)
				}
				_, l := startEngine(t, Config{Loops: loops}, ListenerSpec{Name: "t", Network: network, Address: addr, Module: &lineEcho{}})
				c := dial(t, l)
				payload := []byte("hello\nwor")
				payload = append(payload, []byte("ld\x00\xff\xfe\r\n")...)
				payload = append(payload, "a\nb\nc\ntail-without-newline"...)
				for _, b := range payload {
					if _, err := c.Write([]byte{b}); err != nil {
						t.Fatal(err)
					}
				}
				if err := testutil.HalfClose(c); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("echo = %q, want %q", got, payload)
				}
			})
		}
	}
}

// TestConcurrentClients has 200 clients send random lines in random
// fragments; every byte must come back in order.
func TestConcurrentClients(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		c := dial(t, l)
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			errs <- randomSession(c, seed)
		}(int64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// randomSession sends 20 random lines and an unterminated tail in
// fragments of up to 100 bytes (testutil.Session) and checks that every
// byte comes back.
func randomSession(c net.Conn, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	var sent bytes.Buffer
	for i := 0; i < 20; i++ {
		line := make([]byte, 1+rng.Intn(300))
		rng.Read(line)
		for j := range line {
			if line[j] == '\n' {
				line[j] = 'x'
			}
		}
		sent.Write(line)
		sent.WriteByte('\n')
	}
	sent.WriteString("unterminated")
	return testutil.Session(c, sent.Bytes(), sent.Bytes(), seed, 100)
}

func TestUDPEcho(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "u", Network: "udp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	c := dial(t, l)
	for _, msg := range []string{"one", "two\n", "\x00\xff"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != msg {
			t.Fatalf("got %q, want %q", buf[:n], msg)
		}
	}
}

// TestBackpressure: a client that sends and never reads must make the
// loop stop reading, not queue without bound.
func TestBackpressure(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}, HighWatermark: 64 << 10})
	c := dial(t, l)
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	var written int
	for written < 64<<20 {
		n, err := c.Write(line)
		written += n
		if err != nil {
			break // the write deadline: the server stopped reading
		}
	}
	if written >= 64<<20 {
		t.Fatalf("server took all %d bytes without the client reading", written)
	}
	s := l.Stats()
	if s.ReadsPaused == 0 {
		t.Fatalf("reads never paused: %+v", s)
	}
	// Now read: everything written must come back, and reading resumes.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := testutil.HalfClose(c); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatal(err)
	}
	if int(got) != written-written%len(line) && int(got) != written {
		t.Fatalf("read back %d bytes, wrote %d", got, written)
	}
}

func TestMaxConnections(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}, MaxConnections: 2})
	a, b := dial(t, l), dial(t, l)
	for _, c := range []net.Conn{a, b} {
		testutil.RoundTrip(t, c, "ok\n")
	}
	over := dial(t, l)
	_ = over.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := over.Read(make([]byte, 1)); err == nil {
		t.Fatalf("connection over the limit read %d bytes, want it closed", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection over the limit was left open")
	}
	// The loop counts a close before it closes the descriptor: a client
	// that has seen its connection end finds it counted, with no wait.
	if got := l.Stats().Closed[api.ReasonOverLimit]; got != 1 {
		t.Fatalf("over_limit closes = %d, want 1", got)
	}
	testutil.RoundTrip(t, a, "still\n")
}

func TestIdleTimeout(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}, IdleTimeout: time.Second})
	idle, busy := dial(t, l), dial(t, l)
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		testutil.RoundTrip(t, busy, "ping\n")
		time.Sleep(50 * time.Millisecond)
	}
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read err = %v, want EOF", err)
	}
	testutil.RoundTrip(t, busy, "still here\n")
	if got := l.Stats().Closed[api.ReasonIdleTimeout]; got != 1 {
		t.Fatalf("idle_timeout closes = %d, want 1", got)
	}
}

// TestReplaceKeepsSocket: replacing a listener on the same address hands
// the socket over: no connect is refused, old connections keep the old
// module, new ones get the new.
func TestReplaceKeepsSocket(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = unixPath(t)
			}
			e, old := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: network, Address: addr, Module: &lineEcho{}})
			before := dial(t, old)
			testutil.RoundTrip(t, before, "old\n")
			stop := make(chan struct{})
			refused := make(chan error, 1)
			go func() { // connect in a tight loop across the swap
				defer close(refused)
				n, a := testutil.SplitAddr(old.Addr())
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := net.DialTimeout(n, a, time.Second)
					if err != nil {
						refused <- err
						return
					}
					c.Close()
				}
			}()
			time.Sleep(20 * time.Millisecond)
			spec := old.Spec()
			spec.Module = &upperEcho{}
			nl, err := e.Replace(old, spec)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			close(stop)
			if err := <-refused; err != nil {
				t.Fatalf("a connect failed across the swap: %v", err)
			}
			if nl.Addr() != old.Addr() {
				t.Fatalf("address changed: %s -> %s", old.Addr(), nl.Addr())
			}
			testutil.RoundTrip(t, before, "still old\n")
			after := dial(t, nl)
			if _, err := after.Write([]byte("new\n")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(after, got); err != nil || string(got) != "NEW\n" {
				t.Fatalf("new connection got %q, %v; want the new module's answer", got, err)
			}
		})
	}
}

// upperEcho answers lines upper-cased, to tell it from lineEcho.
type upperEcho struct{ lineEcho }

func (m *upperEcho) OnReadable(c api.Conn) {
	in := c.Inbound()
	if i := bytes.LastIndexByte(in, '\n'); i >= 0 {
		_, _ = c.Write(bytes.ToUpper(in[:i+1]))
		c.Consume(i + 1)
	}
}

// abortOnLine aborts a connection on its first line, or closes it when
// the line is "close".
type abortOnLine struct{ lineEcho }

func (m *abortOnLine) OnReadable(c api.Conn) {
	in := c.Inbound()
	if bytes.IndexByte(in, '\n') < 0 {
		return
	}
	_, _ = c.Write([]byte("bye\n")) // queued output an abort discards
	if string(in) == "close\n" {
		_ = c.Close()
		return
	}
	c.Abort(api.ReasonError, errors.New("test abort"))
}

// TestAbortResets: Abort reaches a TCP peer as a reset, Close as the end
// of a complete exchange.
func TestAbortResets(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &abortOnLine{}})
	for _, tc := range []struct {
		line      string
		wantReset bool
	}{{"close\n", false}, {"abort\n", true}} {
		c := dial(t, l)
		if _, err := c.Write([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		reset := errors.Is(err, syscall.ECONNRESET)
		if err != nil && !reset {
			t.Fatalf("%q: read: %v", tc.line, err)
		}
		if reset != tc.wantReset {
			t.Errorf("%q: reset=%v (read %q), want reset=%v", tc.line, reset, b, tc.wantReset)
		}
		if !tc.wantReset && string(b) != "bye\n" {
			t.Errorf("%q: read %q, want the queued bye", tc.line, b)
		}
	}
}

// floodAndRecord writes more than a peer's buffers hold as it accepts,
// and records every byte it is shown.
type floodAndRecord struct {
	lineEcho
	mu   sync.Mutex
	seen []byte
}

func (m *floodAndRecord) OnAccept(c api.Conn) {
	_, _ = c.Write(bytes.Repeat([]byte("flood\n"), 4<<20/6))
}

func (m *floodAndRecord) OnReadable(c api.Conn) {
	m.mu.Lock()
	m.seen = append(m.seen, c.Inbound()...)
	m.mu.Unlock()
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}

// TestInputSurvivesAFailedWrite: a peer that sends a request and closes
// without reading what it was sent makes the loop's writes fail (EPIPE, or
// a reset: EPOLLERR); the request it sent first still reaches the module,
// and the connection then closes with the error reason.
func TestInputSurvivesAFailedWrite(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = unixPath(t)
			}
			m := &floodAndRecord{lineEcho: lineEcho{closed: make(chan api.Reason, 1)}}
			_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: network, Address: addr, Module: m})
			c := dial(t, l)
			// Wait for the flood to fill the client's receive buffer, so
			// that its close leaves bytes unread.
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte("request\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			c.Close()
			select {
			case r := <-m.closed:
				if r != api.ReasonError {
					t.Errorf("closed for %q, want %q", r, api.ReasonError)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the connection was not closed")
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if string(m.seen) != "request\n" {
				t.Errorf("the module saw %q, want the request", m.seen)
			}
		})
	}
}

// TestAcceptSpreadsConnections connects one client at a time to an idle
// engine. The kernel wakes the first loop waiting for each, so without
// giveWay one loop would serve them all; each loop must serve its share,
// and every connection must work and be counted off its loop when it
// closes.
func TestAcceptSpreadsConnections(t *testing.T) {
	const loops, conns = 4, 64
	e, l := startEngine(t, Config{Loops: loops}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	clients := make([]net.Conn, 0, conns)
	for i := 0; i < conns; i++ {
		c := dial(t, l)
		clients = append(clients, c)
		testutil.RoundTrip(t, c, fmt.Sprintf("line %d\n", i))
	}
	served := func() (counts []int64) {
		for _, s := range e.LoopStats() {
			counts = append(counts, s.Connections)
		}
		return counts
	}
	counts := served()
	lo, hi := counts[0], counts[0]
	var sum int64
	for _, n := range counts {
		lo, hi, sum = min(lo, n), max(hi, n), sum+n
	}
	// 16 each when every loop is asleep at each connect; a loaded
	// machine, with loops busy when a connect arrives, may skew it a
	// little. Without giveWay it is 63/1/0/0.
	if sum != conns || hi-lo > 8 {
		t.Fatalf("connections per loop = %v, want %d in all, at most 8 apart", counts, conns)
	}
	t.Logf("connections per loop %v", counts)
	for _, c := range clients {
		c.Close()
	}
	allClosed := testutil.PollUntil(10*time.Second, func() bool {
		counts = served()
		for _, n := range counts {
			if n != 0 {
				return false
			}
		}
		return l.ActiveConnections() == 0
	})
	if !allClosed {
		t.Fatalf("after every client closed: connections per loop %v, listener active %d", counts, l.ActiveConnections())
	}
}

// panicOnAccept is lineEcho whose OnAccept panics for the clients it is
// told to.
type panicOnAccept struct {
	lineEcho
	panics atomic.Int32 // how many more accepts panic
}

func (m *panicOnAccept) OnAccept(api.Conn) {
	if m.panics.Add(-1) >= 0 {
		panic("OnAccept failed on purpose")
	}
}

// TestPanicInOnAcceptClosesThatConnection: a module's panic in OnAccept
// costs the connection it happened on, and nothing else.
func TestPanicInOnAcceptClosesThatConnection(t *testing.T) {
	m := &panicOnAccept{}
	m.panics.Store(8)
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: m})
	for i := 0; i < 8; i++ {
		c := dial(t, l)
		_, _ = c.Write([]byte("x\n"))
		if n, err := c.Read(make([]byte, 8)); err == nil {
			t.Fatalf("client %d: read %d bytes from a connection whose OnAccept panicked, want it closed", i, n)
		}
	}
	c := dial(t, l)
	testutil.RoundTrip(t, c, "after the panics\n")
	c.Close()
	if !testutil.PollUntil(10*time.Second, func() bool { return l.ActiveConnections() == 0 }) {
		t.Fatalf("listener still counts %d connections", l.ActiveConnections())
	}
}

// TestWriteToAGonePeerRaisesNoSIGPIPE: a write to a unix socket whose peer
// has closed fails with EPIPE, and write(2) would also send the thread a
// SIGPIPE; the loop's writes must not (MSG_NOSIGNAL). lineEcho writes the
// unterminated tail once it sees end-of-file, after the client has gone.
func TestWriteToAGonePeerRaisesNoSIGPIPE(t *testing.T) {
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	m := &lineEcho{closed: make(chan api.Reason, 1)}
	_, l := startEngine(t, Config{}, ListenerSpec{Name: "t", Network: "unix", Address: unixPath(t), Module: m})
	for i := 0; i < 20; i++ {
		c := dial(t, l)
		if _, err := c.Write([]byte("a tail without its newline")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		select {
		case <-m.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: no OnClose", i)
		}
	}
	select {
	case <-sigpipe:
		t.Fatal("a write to a gone peer raised SIGPIPE")
	case <-time.After(100 * time.Millisecond):
	}
}

// stopCounter is lineEcho that counts its Stop calls.
type stopCounter struct {
	lineEcho
	stops atomic.Int32
}

func (m *stopCounter) Stop() error {
	m.stops.Add(1)
	return nil
}

// TestFailedListenStopsTheModule: a module handed to Listen or Replace
// belongs to the listener from then on, and a listener that cannot be made
// (its address taken, its name running) must stop it, once, rather than
// leave it holding what its Start took.
func TestFailedListenStopsTheModule(t *testing.T) {
	e, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	_, taken := testutil.SplitAddr(l.Addr())
	for _, tc := range []struct {
		name string
		spec ListenerSpec
	}{
		{"address in use", ListenerSpec{Name: "other", Network: "tcp", Address: taken}},
		{"name running", ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &stopCounter{}
			tc.spec.Module = m
			if _, err := e.Listen(tc.spec); err == nil {
				t.Fatal("Listen succeeded")
			}
			if n := m.stops.Load(); n != 1 {
				t.Fatalf("Stop ran %d times, want 1", n)
			}
		})
	}
	t.Run("replace onto an address in use", func(t *testing.T) {
		other, err := e.Listen(ListenerSpec{Name: "other", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
		if err != nil {
			t.Fatal(err)
		}
		m := &stopCounter{}
		if _, err := e.Replace(other, ListenerSpec{Name: "other", Network: "tcp", Address: taken, Module: m}); err == nil {
			t.Fatal("Replace succeeded")
		}
		if n := m.stops.Load(); n != 1 {
			t.Fatalf("Stop ran %d times, want 1", n)
		}
		testutil.RoundTrip(t, dial(t, other), "the old listener still serves\n")
	})
}

// TestStaleRegistrationIsIgnored: a descriptor closed while another
// process holds its file (a fork, until it execs) and not taken out of
// epoll first stays registered under its old number, and goes on
// reporting events there. A connection that reuses the number must not get
// them: here the stale file's peer hangs up, and the connection would be
// closed for it.
func TestStaleRegistrationIsIgnored(t *testing.T) {
	e, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "unix", Address: unixPath(t), Module: &lineEcho{}})
	lp := e.loops[0]
	for attempt := 0; attempt < 20; attempt++ {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		stale := pair[0]
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stale)}
		if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, stale, &ev); err != nil {
			t.Fatal(err)
		}
		holder, err := unix.Dup(stale) // the fork's copy
		if err != nil {
			t.Fatal(err)
		}
		// The client's socket first, so that the number freed next goes
		// to the connection the server accepts.
		cfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_ = unix.Close(stale) // no EPOLL_CTL_DEL: the registration stays
		_, path := testutil.SplitAddr(l.Addr())
		if err := unix.Connect(cfd, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(cfd), "client")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		testutil.RoundTrip(t, c, "before\n")
		var reused bool
		_ = lp.call(func() error {
			reused = stale < len(lp.conns) && lp.conns[stale] != nil
			return nil
		})
		if !reused {
			// Another descriptor took the number first; try again.
			_ = unix.Close(holder)
			_ = unix.Close(pair[1])
			c.Close()
			continue
		}
		_ = unix.Close(pair[1]) // the stale file's peer hangs up
		time.Sleep(100 * time.Millisecond)
		testutil.RoundTrip(t, c, "after the stale file hung up\n")
		_ = unix.Close(holder)
		return
	}
	t.Skip("the accepted connection never reused the stale number")
}
