package discard_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/discard"
)

func newDiscard(tb testing.TB, network string) *discard.Discard {
	tb.Helper()
	d := new(discard.Discard)
	if err := apitest.Provision(tb, d, network, ""); err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("discard")
	if !ok {
		t.Fatal("discard is not registered")
	}
	if _, ok := info.New().(*discard.Discard); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestNoOptions(t *testing.T) {
	for _, network := range []string{"tcp", "udp", "unix"} {
		if err := apitest.Provision(t, new(discard.Discard), network, ""); err != nil {
			t.Errorf("%s, no options: %v", network, err)
		}
	}
	tests := []struct{ yaml, want string }{
		{"mode: raw", `options.yaml:1:1: unknown option "mode"`},
		{"\n  bogus: 1", `options.yaml:2:3: unknown option "bogus"`},
	}
	for _, tt := range tests {
		err := apitest.Provision(t, new(discard.Discard), "tcp", tt.yaml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Provision(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

// TestStream: everything is read and dropped, nothing is written, and the
// connection closes once the client half-closes, not before.
func TestStream(t *testing.T) {
	c := apitest.NewConn(newDiscard(t, "tcp"), apitest.WithT(t), apitest.WithSeed(7))
	c.FeedSplit([]byte("first line\nsecond \x00\xff\r\n and no newline"))
	c.FeedString(strings.Repeat("z", 100<<10))
	if got := c.Written(); len(got) != 0 {
		t.Errorf("discard wrote %q", got)
	}
	if u := c.Unconsumed(); len(u) != 0 {
		t.Errorf("%d bytes left unconsumed", len(u))
	}
	if c.Closing() || c.Paused() {
		t.Fatalf("closing %v, paused %v before the client half-closed", c.Closing(), c.Paused())
	}
	c.FeedEOF()
	if !c.Closed() || c.Reason() != api.ReasonClient || c.Aborted() {
		t.Errorf("after half-close: closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
	}
	if len(c.Violations()) != 0 {
		t.Errorf("violations: %v", c.Violations())
	}
}

// TestStreamHoldsNothing: a client that sends far more than the loop's
// input bound is never cut off, since discard consumes every read.
func TestStreamHoldsNothing(t *testing.T) {
	c := apitest.NewConn(newDiscard(t, "tcp"), apitest.WithT(t), apitest.WithMaxInput(1024))
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for range 160 {                                         // 10 MiB
		c.Feed(chunk)
	}
	if c.Closing() || len(c.Unconsumed()) != 0 {
		t.Errorf("closing %v (%q), %d unconsumed", c.Closing(), c.Reason(), len(c.Unconsumed()))
	}
}

func TestEOFAtOnce(t *testing.T) {
	c := apitest.NewConn(newDiscard(t, "unix"), apitest.WithT(t))
	c.FeedEOF()
	if !c.Closed() || c.Reason() != api.ReasonClient || len(c.Written()) != 0 {
		t.Errorf("closed %v, reason %q, wrote %q", c.Closed(), c.Reason(), c.Written())
	}
}

func TestShutdown(t *testing.T) {
	c := apitest.NewConn(newDiscard(t, "tcp"), apitest.WithT(t))
	c.FeedString("pending")
	c.Shutdown()
	if !c.Closed() || c.Reason() != api.ReasonShutdown || c.Aborted() {
		t.Errorf("closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
	}
}

// TestPacket: datagrams are dropped, from any port.
func TestPacket(t *testing.T) {
	d := newDiscard(t, "udp")
	w := apitest.NewPacketWriter()
	for _, from := range []string{"127.0.0.1:40000", "127.0.0.1:7", "[::1]:65535", "192.0.2.1:0"} {
		w.Deliver(d, []byte("drop me"), netip.MustParseAddrPort(from))
		w.Deliver(d, nil, netip.MustParseAddrPort(from))
	}
	if p := w.Packets(); len(p) != 0 {
		t.Errorf("discard sent %d datagrams: %+v", len(p), p)
	}
}
