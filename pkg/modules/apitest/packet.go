package apitest

import (
	"errors"
	"net/netip"

	"github.com/netd/netd/pkg/modules/api"
)

// Packet is one datagram a module sent.
type Packet struct {
	Data []byte
	Addr netip.AddrPort
}

// PacketWriter is a fake api.PacketWriter: it records what the module sends
// and, with Deliver, hands it datagrams as the loop does.
type PacketWriter struct {
	s       settings
	packets []Packet
	full    bool
	dropped int
	scratch []byte
}

var _ api.PacketWriter = (*PacketWriter)(nil)

// errBadAddr is what sending to an invalid address returns, as the kernel
// refuses one.
var errBadAddr = errors.New("apitest: WriteTo an invalid address")

// NewPacketWriter returns a fake socket for a datagram listener. WithT and
// WithListener are the options that concern it.
func NewPacketWriter(opts ...Option) *PacketWriter {
	return &PacketWriter{s: newSettings(opts)}
}

// Deliver hands p from from to h.OnPacket. p is copied first and the copy
// poisoned once OnPacket returns, since the loop reuses its buffer: a
// module that keeps p sees garbage.
func (w *PacketWriter) Deliver(h api.PacketHandler, p []byte, from netip.AddrPort) {
	w.scratch = append(w.scratch[:0], p...)
	h.OnPacket(w, w.scratch, from)
	for i := range w.scratch {
		w.scratch[i] = poison
	}
}

// WriteTo implements api.PacketWriter: it records a copy of p, or drops it
// with api.ErrQueueFull while SetQueueFull(true).
func (w *PacketWriter) WriteTo(p []byte, addr netip.AddrPort) error {
	if !addr.IsValid() {
		return errBadAddr
	}
	if w.full {
		w.dropped++
		return api.ErrQueueFull
	}
	w.packets = append(w.packets, Packet{Data: append([]byte(nil), p...), Addr: addr})
	return nil
}

// Listener implements api.PacketWriter.
func (w *PacketWriter) Listener() string { return w.s.listener }

// Packets returns the datagrams sent so far, in order.
func (w *PacketWriter) Packets() []Packet { return append([]Packet(nil), w.packets...) }

// TakePackets returns Packets and forgets them.
func (w *PacketWriter) TakePackets() []Packet {
	p := w.packets
	w.packets = nil
	return p
}

// SetQueueFull makes WriteTo drop datagrams (full) or send them again.
func (w *PacketWriter) SetQueueFull(full bool) { w.full = full }

// Dropped returns the datagrams dropped while the queue was full.
func (w *PacketWriter) Dropped() int { return w.dropped }
