package loop

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// TestListenAddressSpellings binds the spellings config validates and the
// loop once refused or read otherwise (tcp://LOCALHOST:0 passed validate
// and failed serve), and talks to each.
func TestListenAddressSpellings(t *testing.T) {
	tests := []struct {
		network, address string
		bound            string // the prefix of Listener.Addr
	}{
		{"tcp", "LOCALHOST:0", "tcp://127.0.0.1:"},
		{"tcp", "localhost:0", "tcp://127.0.0.1:"},
		{"tcp4", "LocalHost:0", "tcp4://127.0.0.1:"},
		{"tcp6", "LOCALHOST:0", "tcp6://[::1]:"},
		{"tcp4", "[::ffff:127.0.0.1]:0", "tcp4://127.0.0.1:"},
		{"tcp6", "[::1%lo]:0", "tcp6://[::1]:"},
		{"udp", "LOCALHOST:0", "udp://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.network+"/"+tt.address, func(t *testing.T) {
			_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: tt.network, Address: tt.address, Module: &lineEcho{}})
			if !strings.HasPrefix(l.Addr(), tt.bound) {
				t.Fatalf("bound %s, want %s…", l.Addr(), tt.bound)
			}
			if strings.HasPrefix(tt.network, "udp") {
				return
			}
			testutil.RoundTrip(t, dial(t, l), "hello\n")
		})
	}
}

// TestListenAddressErrors: what the address parser refuses, Listen
// refuses with its one-line error, and nothing is bound.
func TestListenAddressErrors(t *testing.T) {
	tests := []struct{ network, address, want string }{
		{"tcp", "example.com:0", `address "example.com:0": host "example.com" is not an IP address or localhost`},
		{"tcp", "127.0.0.1", `address "127.0.0.1": missing port`},
		{"tcp6", "[::ffff:127.0.0.1]:0", `tcp6 wants an IPv6 host, got ::ffff:127.0.0.1`},
		{"udp4", "[::1]:0", `udp4 wants an IPv4 host, got ::1`},
		{"tcp6", "[fe80::1%no-such-if0]:0", `no interface "no-such-if0" on this machine`},
	}
	e, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		l, err := e.Listen(ListenerSpec{Name: "t", Network: tt.network, Address: tt.address, Module: &lineEcho{}})
		if err == nil {
			l.Close()
			t.Errorf("Listen(%s %s) binds %s, want an error", tt.network, tt.address, l.Addr())
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Listen(%s %s): %v, want one line with %s", tt.network, tt.address, err, tt.want)
		}
	}
}

// dialer is a module that dials addr for each client and reports the
// outcome: "connected", or the error of Dial or of the connect.
type dialer struct {
	network, addr string
	result        chan string
}

func (m *dialer) Provision(api.Setup) error { return nil }
func (m *dialer) OnAccept(c api.Conn) {
	if _, err := c.Loop().Dial(m.network, m.addr, time.Second, (*dialSide)(m)); err != nil {
		m.result <- err.Error()
	}
}
func (m *dialer) OnReadable(c api.Conn) {
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}
func (m *dialer) OnWritable(api.Conn)                 {}
func (m *dialer) OnClose(api.Conn, api.Reason, error) {}

type dialSide dialer

func (d *dialSide) OnAccept(c api.Conn) {
	d.result <- "connected"
	_ = c.Close()
}
func (d *dialSide) OnReadable(c api.Conn) { c.Consume(len(c.Inbound())) }
func (d *dialSide) OnWritable(api.Conn)   {}
func (d *dialSide) OnClose(_ api.Conn, _ api.Reason, err error) {
	if err != nil {
		d.result <- "connect: " + err.Error()
	}
}

// TestDialAddressSpellings: Loop.Dial takes host:port by the same rules
// as a proxy's upstreams, LOCALHOST included, and refuses what names no
// one machine before it makes a socket.
func TestDialAddressSpellings(t *testing.T) {
	target, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	port := strconv.Itoa(target.Addr().(*net.TCPAddr).Port)
	tests := []struct{ network, addr, want string }{
		{"tcp", "LOCALHOST:" + port, "connected"},
		{"tcp4", "[::ffff:127.0.0.1]:" + port, "connected"},
		{"tcp", "0.0.0.0:" + port, `dial: address "0.0.0.0:` + port + `": cannot connect to the unspecified address 0.0.0.0`},
		{"tcp", ":" + port, `dial: address ":` + port + `": missing host`},
		{"tcp", "127.0.0.1:0", `dial: address "127.0.0.1:0": cannot connect to port 0`},
		{"tcp", "example.com:80", `dial: address "example.com:80": host "example.com" is not an IP address or localhost`},
		{"udp", "127.0.0.1:53", `dial: unsupported network "udp"`},
	}
	for _, tt := range tests {
		t.Run(tt.network+"/"+tt.addr, func(t *testing.T) {
			m := &dialer{network: tt.network, addr: tt.addr, result: make(chan string, 4)}
			_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: m})
			c := dial(t, l)
			defer c.Close()
			select {
			case got := <-m.result:
				if got != tt.want {
					t.Errorf("Dial(%s, %s): %s, want %s", tt.network, tt.addr, got, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Dial(%s, %s): no outcome", tt.network, tt.addr)
			}
		})
	}
}
