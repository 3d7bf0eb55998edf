package proxy_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/netd/netd/internal/looptest"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

// closer is a module that, for each client, dials addr and at once closes
// the dial with Close, before it has connected, then reports what the
// dial's handler saw.
type closer struct {
	addr     string
	mu       sync.Mutex
	accepted int
	closed   chan api.Reason
}

func (m *closer) Provision(api.Setup) error { return nil }
func (m *closer) OnAccept(c api.Conn) {
	up, err := c.Loop().Dial("tcp", m.addr, time.Second, (*dialSide)(m))
	if err != nil {
		m.closed <- api.Reason("dial: " + err.Error())
		return
	}
	_ = up.Close()
}
func (m *closer) OnReadable(c api.Conn)               { c.Consume(len(c.Inbound())) }
func (m *closer) OnWritable(api.Conn)                 {}
func (m *closer) OnClose(api.Conn, api.Reason, error) {}

type dialSide closer

func (d *dialSide) OnAccept(api.Conn) {
	d.mu.Lock()
	d.accepted++
	d.mu.Unlock()
}
func (d *dialSide) OnReadable(c api.Conn)                     { c.Consume(len(c.Inbound())) }
func (d *dialSide) OnWritable(api.Conn)                       {}
func (d *dialSide) OnClose(_ api.Conn, r api.Reason, _ error) { d.closed <- r }

// TestLoopCloseWhileConnecting is the real loop's Close of a connection
// still connecting, as api.Loop.Dial documents it: OnClose runs, soon, and
// OnAccept never does. (The proxy itself aborts a dial it gives up.) The
// fake loop of apitest does the same; this keeps the two in step.
func TestLoopCloseWhileConnecting(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	m := &closer{addr: srv.Addr().String(), closed: make(chan api.Reason, 1)}
	l := looptest.Serve(t, 1, loop.ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: m})
	addr := l.Addr()[len("tcp://"):]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case r := <-m.closed:
		t.Logf("OnClose(%s)", r)
	case <-time.After(3 * time.Second):
		t.Error("a dial closed while connecting never got its OnClose")
	}
	time.Sleep(100 * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.accepted != 0 {
		t.Errorf("OnAccept ran %d times on a connection the module had closed", m.accepted)
	}
}
