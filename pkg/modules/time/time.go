// Package timeproto is netd's time module, RFC 868, registered as "time":
// it sends the seconds since 1900-01-01 00:00 UTC as 4 bytes, big-endian,
// once per TCP or unix connection (then closes) and once per UDP datagram.
//
// The package is named timeproto so as not to shadow the standard library's
// time in the code that imports it.
package timeproto

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// Offset is the number of seconds from 1900-01-01 00:00 UTC, RFC 868's
// epoch, to 1970-01-01 00:00 UTC, Unix's.
const Offset = 2208988800

// Stamp returns t as RFC 868 sends it: the seconds since 1900 in 32 bits,
// big-endian. The count wraps, as RFC 868 and xinetd have it: 2036-02-07
// 06:28:16 UTC is 0 again, and a client that knows the era (its own clock
// is not 68 years off) reads on.
func Stamp(t time.Time) [4]byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(t.Unix()+Offset)) // keeps the low 32 bits: the wrap
	return b
}

// Time is one time instance, serving one listener.
type Time struct {
	api.StreamBase // OnWritable, OnClose: 4 bytes, then nothing to do

	// now is the clock; tests replace it.
	now func() time.Time
}

var (
	_ api.Module        = (*Time)(nil)
	_ api.StreamHandler = (*Time)(nil)
	_ api.PacketHandler = (*Time)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "time",
		Description: "RFC 868: sends the seconds since 1900 as 4 bytes, big-endian, per connection (then closes) or per datagram",
		New:         func() api.Module { return &Time{now: time.Now} },
	})
}

// Provision implements api.Module. Time has no options: decoding into an
// empty struct makes any option a FILE:LINE:COL error.
func (m *Time) Provision(s api.Setup) error {
	if m.now == nil {
		m.now = time.Now
	}
	return s.Options.Decode(&struct{}{})
}

func (m *Time) stamp() [4]byte {
	if m.now == nil {
		return Stamp(time.Now())
	}
	return Stamp(m.now())
}

// OnAccept implements api.StreamHandler: the 4 bytes, then a close; the
// loop flushes them before it closes the socket.
func (m *Time) OnAccept(c api.Conn) {
	b := m.stamp()
	_, _ = c.Write(b[:])
	_ = c.Close()
}

// OnReadable implements api.StreamHandler. What the client sends is
// ignored; the connection is already closing.
func (m *Time) OnReadable(c api.Conn) {
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}

// OnPacket implements api.PacketHandler: each datagram, whatever it holds
// (RFC 868 asks for an empty one), is answered with the 4 bytes, except
// datagrams from ports below 1024, so that two such services cannot be set
// bouncing packets at each other.
func (m *Time) OnPacket(w api.PacketWriter, _ []byte, from netip.AddrPort) {
	if api.IsReflectorPort(from.Port()) {
		return
	}
	b := m.stamp()
	_ = w.WriteTo(b[:], from)
}
