// Package discard is netd's discard module, RFC 863: it reads and drops
// everything, on TCP, unix sockets and UDP, and answers nothing.
package discard

import (
	"net/netip"

	"github.com/netd/netd/pkg/modules/api"
)

// Discard is one discard instance, serving one listener. It keeps no state,
// waits for the client and writes nothing.
type Discard struct{ api.StreamBase }

var (
	_ api.Module        = (*Discard)(nil)
	_ api.StreamHandler = (*Discard)(nil)
	_ api.PacketHandler = (*Discard)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "discard",
		Description: "RFC 863: reads and drops everything it receives, on streams and datagrams; answers nothing",
		New:         func() api.Module { return new(Discard) },
	})
}

// Provision implements api.Module. Discard has no options: decoding into an
// empty struct makes any option a FILE:LINE:COL error.
func (*Discard) Provision(s api.Setup) error { return s.Options.Decode(&struct{}{}) }

// OnReadable implements api.StreamHandler: everything that arrived is
// dropped, and once the client has half-closed the connection closes.
func (*Discard) OnReadable(c api.Conn) {
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}

// OnPacket implements api.PacketHandler: the datagram is dropped. Since
// nothing is sent back, there is no reflector to guard against.
func (*Discard) OnPacket(api.PacketWriter, []byte, netip.AddrPort) {}
