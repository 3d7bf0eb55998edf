package testutil

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// DialTimeout bounds a connect; ConnDeadline bounds all I/O on a
// connection Dial returns, so a silent peer fails the test instead of
// hanging it.
const (
	DialTimeout  = 5 * time.Second
	ConnDeadline = 20 * time.Second
)

// SplitAddr splits a bound address as netd reports it ("tcp://host:port",
// "tcp6://[::1]:port", "unix:///path", "udp://...") into the network and
// address net.Dial takes; tcp4/tcp6 and udp4/udp6 dial as tcp and udp.
func SplitAddr(addr string) (network, address string) {
	network, address, _ = strings.Cut(addr, "://")
	switch network {
	case "tcp4", "tcp6":
		network = "tcp"
	case "udp4", "udp6":
		network = "udp"
	}
	return network, address
}

// Dial connects to a bound address as SplitAddr reads it.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	network, address := SplitAddr(addr)
	return DialNet(t, network, address)
}

// DialNet connects to address on network within DialTimeout, sets
// ConnDeadline, and closes the connection when t ends.
func DialNet(t testing.TB, network, address string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, address, DialTimeout)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, address, err)
	}
	_ = c.SetDeadline(time.Now().Add(ConnDeadline))
	t.Cleanup(func() { c.Close() })
	return c
}

// RoundTrip writes line to c and fails t unless the same bytes come back.
func RoundTrip(t testing.TB, c net.Conn, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(line))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("round trip %q: %v", line, err)
	}
	if string(got) != line {
		t.Fatalf("round trip: got %q, want %q", got, line)
	}
}

// HalfClose shuts down the writing side of c (a TCP or unix stream), so
// the peer reads EOF while c can still read.
func HalfClose(c net.Conn) error {
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("half-close: %T cannot close its writing side", c)
	}
	return hc.CloseWrite()
}

// CloseWrite is HalfClose that fails t.
func CloseWrite(t testing.TB, c net.Conn) {
	t.Helper()
	if err := HalfClose(c); err != nil {
		t.Fatal(err)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
