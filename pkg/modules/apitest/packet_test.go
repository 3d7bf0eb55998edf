package apitest_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// reflector answers every datagram with itself, and keeps the last p it
// saw, as a buggy module would.
type reflector struct {
	kept []byte
	errs []error
}

func (r *reflector) OnPacket(w api.PacketWriter, p []byte, from netip.AddrPort) {
	r.kept = p
	r.errs = append(r.errs, w.WriteTo(p, from))
}

func TestPacketWriterRecords(t *testing.T) {
	w := apitest.NewPacketWriter(apitest.WithListener("udp-echo"))
	r := &reflector{}
	from := netip.MustParseAddrPort("192.0.2.7:40000")
	w.Deliver(r, []byte("ping"), from)
	w.Deliver(r, []byte("pong"), from)
	got := w.Packets()
	if len(got) != 2 || string(got[0].Data) != "ping" || string(got[1].Data) != "pong" || got[0].Addr != from {
		t.Fatalf("Packets = %+v", got)
	}
	if string(r.kept) == "pong" {
		t.Error("p kept past OnPacket still reads the datagram; the loop would have reused it")
	}
	if w.Listener() != "udp-echo" {
		t.Errorf("Listener = %q", w.Listener())
	}
	if len(w.TakePackets()) != 2 || len(w.Packets()) != 0 {
		t.Error("TakePackets did not forget")
	}
}

func TestPacketWriterQueueFull(t *testing.T) {
	w := apitest.NewPacketWriter()
	r := &reflector{}
	w.SetQueueFull(true)
	w.Deliver(r, []byte("x"), netip.MustParseAddrPort("192.0.2.7:40000"))
	if !errors.Is(r.errs[0], api.ErrQueueFull) || w.Dropped() != 1 || len(w.Packets()) != 0 {
		t.Errorf("err %v, Dropped %d, Packets %d", r.errs[0], w.Dropped(), len(w.Packets()))
	}
	w.SetQueueFull(false)
	if err := w.WriteTo([]byte("x"), netip.AddrPort{}); err == nil {
		t.Error("WriteTo an invalid address succeeded")
	}
}
