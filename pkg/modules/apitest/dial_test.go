package apitest_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// forwarder dials an upstream per client and copies the client's bytes to
// it: the smallest module that needs Loop.Dial.
type forwarder struct {
	handler
	address string
	up      api.Conn
	dialErr error
}

func (f *forwarder) OnAccept(c api.Conn) {
	f.up, f.dialErr = c.Loop().Dial("tcp", f.address, time.Second, &f.handler)
}

func (f *forwarder) OnReadable(c api.Conn) {
	_, _ = f.up.Write(c.Inbound())
	c.Consume(len(c.Inbound()))
}

func TestDialConnect(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	f := &forwarder{address: "127.0.0.1:6379"}
	var accepted bool
	f.handler.accept = func(c api.Conn) {
		accepted = true
		_, _ = c.Write([]byte("hello "))
	}
	client := apitest.NewConn(f, apitest.WithT(t), apitest.WithLoop(l))
	if f.dialErr != nil {
		t.Fatal(f.dialErr)
	}
	dials := l.Dials()
	if len(dials) != 1 {
		t.Fatalf("Dials = %d", len(dials))
	}
	d := dials[0]
	if d.Network != "tcp" || d.Address != "127.0.0.1:6379" || d.Timeout != time.Second || !d.Connecting() {
		t.Fatalf("Dial %+v connecting %v", d, d.Connecting())
	}
	if api.Conn(d.Conn) != f.up || d.Loop() != client.Loop() {
		t.Fatal("the Dial's Conn is not what the module holds, or is on another loop")
	}
	if ra, ok := d.RemoteAddr().(*net.TCPAddr); !ok || ra.Port != 6379 || !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("RemoteAddr = %v", d.RemoteAddr())
	}
	client.FeedString("queued")
	if d.WrittenString() != "" || d.Buffered() != 6 {
		t.Fatalf("before Connect: Written %q Buffered %d; writes must queue", d.WrittenString(), d.Buffered())
	}
	d.Connect()
	if !accepted || d.Connecting() {
		t.Fatal("Connect did not run OnAccept")
	}
	// Queued first, then what OnAccept wrote: the order the module wrote in.
	if got := d.WrittenString(); got != "queuedhello " || d.Buffered() != 0 {
		t.Errorf("after Connect: Written %q Buffered %d", got, d.Buffered())
	}
	if f.handler.writables != 1 {
		t.Errorf("OnWritable ran %d times after the queue drained, want 1", f.handler.writables)
	}
	client.FeedString("more")
	if got := d.WrittenString(); got != "queuedhello more" {
		t.Errorf("Written %q", got)
	}
	d.FeedString("reply")
	if f.handler.reads != 1 {
		t.Errorf("upstream OnReadable ran %d times", f.handler.reads)
	}
}

func TestDialFail(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	f := &forwarder{address: "[::1]:1"}
	apitest.NewConn(f, apitest.WithT(t), apitest.WithLoop(l))
	d := l.Dials()[0]
	d.Fail(nil)
	if !d.Closed() || d.Reason() != api.ReasonError || !errors.Is(d.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("Closed %v Reason %q Err %v", d.Closed(), d.Reason(), d.Err())
	}
	if len(f.handler.closes) != 1 || f.handler.closes[0] != api.ReasonError {
		t.Fatalf("OnClose = %v", f.handler.closes)
	}
	d.Connect() // closed: nothing happens
	if f.handler.reads+f.handler.writables != 0 || len(f.handler.closes) != 1 {
		t.Error("a failed dial came back to life")
	}

	apitest.NewConn(f, apitest.WithT(t), apitest.WithLoop(l))
	l.Dials()[1].Fail(api.ErrConnectTimeout)
	if !errors.Is(f.handler.closeErrs[1], api.ErrConnectTimeout) {
		t.Errorf("timeout: OnClose err %v", f.handler.closeErrs[1])
	}
}

func TestDialAddresses(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "127.0.0.1:80", true},
		{"tcp", "[::1]:80", true},
		{"tcp", "localhost:80", true},
		{"tcp6", "localhost:80", true},
		{"tcp", "LOCALHOST:80", true},
		{"tcp", "127.0.0.1:0", false},
		{"tcp4", "[::1]:80", false},
		{"tcp6", "127.0.0.1:80", false},
		{"tcp", "example.com:80", false},
		{"tcp", "0.0.0.0:80", false},
		{"tcp", "127.0.0.1", false},
		{"tcp", "127.0.0.1:http", false},
		{"unix", "/run/x.sock", true},
		{"unix", "", false},
		{"udp", "127.0.0.1:53", false},
	}
	_ = l.Submit(func() {
		for _, tt := range tests {
			c, err := l.Dial(tt.network, tt.address, 0, &handler{})
			if (err == nil) != tt.ok || (c == nil) == tt.ok {
				t.Errorf("Dial(%q, %q) = %v, %v", tt.network, tt.address, c, err)
			}
		}
		if _, err := l.Dial("tcp", "127.0.0.1:1", 0, nil); err == nil {
			t.Error("Dial with a nil handler succeeded")
		}
	})
	l.RunPending()
}

func TestSetDialError(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	var tried []string
	l.SetDialError(func(network, address string) error {
		tried = append(tried, network+" "+address)
		if network == "unix" {
			return syscall.ENOENT
		}
		return nil
	})
	var errs []error
	_ = l.Submit(func() {
		_, err := l.Dial("unix", "/nowhere.sock", 0, &handler{})
		errs = append(errs, err)
		_, err = l.Dial("tcp", "127.0.0.1:2", 0, &handler{})
		errs = append(errs, err)
	})
	l.RunPending()
	if !errors.Is(errs[0], syscall.ENOENT) || errs[1] != nil || len(l.Dials()) != 1 || len(tried) != 2 {
		t.Errorf("errs %v, Dials %d, tried %q", errs, len(l.Dials()), tried)
	}
}

func TestCloseWhileConnecting(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	h := &handler{}
	var up api.Conn
	_ = l.Submit(func() {
		up, _ = l.Dial("tcp", "127.0.0.1:9", 0, h)
		_ = up.Close()
	})
	l.RunPending()
	d := l.Dials()[0]
	if !d.Closed() || len(h.closes) != 1 || h.closes[0] != api.ReasonDone {
		t.Fatalf("Close while connecting with nothing queued: Closed %v OnClose %v", d.Closed(), h.closes)
	}

	// With output queued, the close waits for the connect to deliver it.
	accepted := false
	h2 := &handler{accept: func(api.Conn) { accepted = true }}
	_ = l.Submit(func() {
		up, _ = l.Dial("tcp", "127.0.0.1:9", 0, h2)
		_, _ = up.Write([]byte("last words"))
		_ = up.Close()
	})
	l.RunPending()
	d = l.Dials()[1]
	if d.Closed() || !d.Closing() {
		t.Fatal("closed before its queued output went out")
	}
	d.Connect()
	if accepted || !d.Closed() || d.Aborted() || d.WrittenString() != "last words" {
		t.Fatalf("OnAccept %v Closed %v Aborted %v Written %q", accepted, d.Closed(), d.Aborted(), d.WrittenString())
	}
}

func TestDialMisuse(t *testing.T) {
	t.Run("dial off the loop", func(t *testing.T) {
		tb := &fakeTB{}
		l := apitest.NewLoop(apitest.WithT(tb))
		_, _ = l.Dial("tcp", "127.0.0.1:1", 0, &handler{})
		tb.reported(t, "Loop.Dial called outside a callback")
	})
	t.Run("feed before connect", func(t *testing.T) {
		tb := &fakeTB{}
		l := apitest.NewLoop(apitest.WithT(tb))
		_ = l.Submit(func() { _, _ = l.Dial("tcp", "127.0.0.1:1", 0, &handler{}) })
		l.RunPending()
		d := l.Dials()[0]
		d.FeedString("x")
		tb.reported(t, "Feed before Connect")
		d.FeedEOF()
		tb.reported(t, "FeedEOF before Connect")
		if d.Drain(-1) != 0 {
			t.Error("Drain moved bytes while connecting")
		}
	})
	t.Run("connect an accepted conn", func(t *testing.T) {
		tb := &fakeTB{}
		c := apitest.NewConn(&handler{}, apitest.WithT(tb))
		c.Connect()
		tb.reported(t, "not connecting")
		c.Fail(nil)
		tb.reported(t, "not connecting")
	})
}

// socketpair returns two connected stream sockets, closed when the test
// ends unless handed over.
func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func TestAttach(t *testing.T) {
	ours, theirs := socketpair(t)
	defer unix.Close(theirs)
	l := apitest.NewLoop(apitest.WithT(t))
	var attached api.Conn
	h := &handler{accept: func(c api.Conn) { _, _ = c.Write([]byte("hi")) }}
	_ = l.Submit(func() {
		var err error
		attached, err = l.Attach(ours, h)
		if err != nil {
			t.Error(err)
		}
	})
	l.RunPending()
	a := l.Attached()
	if len(a) != 1 || api.Conn(a[0]) != attached || a[0].WrittenString() != "hi" {
		t.Fatalf("Attached %v; OnAccept must run before Attach returns", a)
	}
	if _, ok := a[0].RemoteAddr().(*net.UnixAddr); !ok {
		t.Errorf("RemoteAddr = %v", a[0].RemoteAddr())
	}
	a[0].FeedString("from the child")
	if h.reads != 1 {
		t.Errorf("OnReadable %d", h.reads)
	}
	if !fdOpen(ours) {
		t.Fatal("fd closed while the Conn is open")
	}
	a[0].Terminate(api.ReasonError, nil)
	if fdOpen(ours) {
		t.Error("Attach owns fd: it must be closed with the Conn")
	}
}

func TestAttachRefusesNonStreams(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dg, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dg)
	_ = l.Submit(func() {
		for _, fd := range []int{int(f.Fd()), dg, -1} {
			if _, err := l.Attach(fd, &handler{}); err == nil || !strings.Contains(err.Error(), "not a stream socket") {
				t.Errorf("Attach(%d) = %v", fd, err)
			}
		}
		ours, theirs := socketpair(t)
		defer unix.Close(theirs)
		if _, err := l.Attach(ours, nil); err == nil {
			t.Error("Attach with a nil handler succeeded")
			return
		}
		unix.Close(ours)
	})
	l.RunPending()
}

func TestWatchAndFire(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := int(r.Fd())
	fired := 0
	var stop func()
	c := apitest.NewConn(&handler{accept: func(c api.Conn) {
		stop, err = c.Loop().Watch(fd, func() {
			fired++
			_, _ = c.Write([]byte("fired\n")) // a watcher runs as the loop
		})
	}}, apitest.WithT(t), apitest.WithLoop(l))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Watched(); len(got) != 1 || got[0] != fd {
		t.Fatalf("Watched = %v", got)
	}
	if !l.Fire(fd) || !l.Fire(fd) || fired != 2 || c.WrittenString() != "fired\nfired\n" {
		t.Fatalf("fired %d, Written %q", fired, c.WrittenString())
	}
	if l.Fire(fd + 1000) {
		t.Error("Fire of an unwatched fd reported a watcher")
	}
	_ = l.Submit(func() {
		if _, err := l.Watch(fd, func() {}); err == nil {
			t.Error("watching twice succeeded")
		}
		if _, err := l.Watch(1<<20, func() {}); err == nil {
			t.Error("watching a closed fd succeeded")
		}
		if _, err := l.Watch(fd, nil); err == nil {
			t.Error("Watch with a nil func succeeded")
		}
		stop()
	})
	l.RunPending()
	if l.Fire(fd) || fired != 2 || len(l.Watched()) != 0 {
		t.Errorf("after stop: fired %d, Watched %v", fired, l.Watched())
	}
}

func TestWatchMisuse(t *testing.T) {
	tb := &fakeTB{}
	l := apitest.NewLoop(apitest.WithT(tb))
	stop, err := l.Watch(0, func() {})
	tb.reported(t, "Loop.Watch called outside a callback")
	if err == nil {
		stop()
		tb.reported(t, "stop func of Watch")
	}
	_ = l.Submit(func() { l.Fire(0) })
	l.RunPending()
	tb.reported(t, "Fire called from inside a callback")
}
