// Package chargen is netd's character generator module, RFC 864. Over TCP
// and unix sockets it sends the rotating lines of printable ASCII until the
// client closes, only as fast as the client reads; over UDP it answers each
// datagram with one datagram of those lines, as xinetd does.
package chargen

import (
	"net/netip"
	"sync/atomic"

	"github.com/netd/netd/pkg/modules/api"
)

// The pattern of RFC 864: the 95 printable ASCII characters, ' ' to '~',
// form a ring; line N holds the 72 characters from number N (mod 95) on,
// followed by CRLF. It repeats every 95 lines.
const (
	// LineChars is the number of characters on a line, CRLF aside.
	LineChars = 72
	// Lines is the number of distinct lines: the pattern repeats after them.
	Lines = '~' - ' ' + 1
	// LineBytes is a line's length on the wire, CRLF included.
	LineBytes = LineChars + 2
	// Period is the length of the pattern on the wire before it repeats.
	Period = Lines * LineBytes

	// DatagramSize is the length of each UDP answer, as xinetd sends it:
	// 13 whole lines, then the first 60 characters of the next and CRLF.
	DatagramSize = 1024
	// DatagramLines is the number of lines, the last one cut short, in each
	// UDP answer; the next answer goes on from the line after them.
	DatagramLines = (DatagramSize + LineBytes - 1) / LineBytes

	// Piece is the most a TCP connection writes at a time, and so the most
	// output it ever leaves queued in the loop when the kernel takes less.
	Piece = 16 << 10
	// Budget is the most a TCP connection writes per OnWritable, so that
	// one fast client cannot keep its loop from the others.
	Budget = 64 << 10
)

// stream is the pattern followed by its first Piece bytes again, so that a
// Piece starting anywhere in the pattern is one slice of it.
var stream = func() []byte {
	b := make([]byte, 0, Period+Piece)
	for n := 0; len(b) < Period+Piece; n++ {
		for i := range LineChars {
			b = append(b, byte(' '+(n+i)%Lines))
		}
		b = append(b, '\r', '\n')
	}
	return b[:Period+Piece]
}()

// Chargen is one chargen instance, serving one listener.
type Chargen struct {
	api.StreamBase // OnClose: a connection holds nothing to release

	// lines counts the lines sent in UDP answers, so that each answer goes
	// on where the last one stopped, as xinetd's do.
	lines atomic.Uint64
}

var (
	_ api.Module        = (*Chargen)(nil)
	_ api.StreamHandler = (*Chargen)(nil)
	_ api.PacketHandler = (*Chargen)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "chargen",
		Description: "RFC 864: sends rotating lines of printable ASCII as fast as the client reads, until it closes; one 1024-byte datagram per datagram",
		New:         func() api.Module { return new(Chargen) },
	})
}

// Provision implements api.Module. Chargen has no options: decoding into an
// empty struct makes any option a FILE:LINE:COL error.
func (*Chargen) Provision(s api.Setup) error { return s.Options.Decode(&struct{}{}) }

// position is a connection's place in the pattern: the offset in stream of
// the next byte to write, below Period.
type position struct{ off int }

// OnAccept implements api.StreamHandler: every connection starts at the
// first line, and asks to hear whenever the socket can take more.
func (*Chargen) OnAccept(c api.Conn) {
	c.SetContext(&position{})
	c.WantWritable(true)
}

// OnWritable implements api.StreamHandler: it writes the next Piece, and
// more while the kernel takes everything, up to Budget. Once the kernel
// takes less than a Piece the rest waits in the loop, which calls
// OnWritable again only when it has sent it all: the output queued for a
// client that reads slowly stays under one Piece.
func (*Chargen) OnWritable(c api.Conn) {
	p, ok := c.Context().(*position)
	if !ok {
		return
	}
	for sent := 0; sent < Budget && c.Buffered() == 0; sent += Piece {
		if _, err := c.Write(stream[p.off : p.off+Piece]); err != nil {
			return
		}
		p.off = (p.off + Piece) % Period
	}
}

// OnReadable implements api.StreamHandler: what the client sends is thrown
// away, and once it half-closes the connection closes.
func (*Chargen) OnReadable(c api.Conn) {
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}

// OnPacket implements api.PacketHandler: each datagram, whatever it holds,
// is answered with DatagramSize bytes of the pattern (13 lines, then 60
// characters of the next and CRLF), going on from where the previous
// answer stopped, except datagrams from ports below 1024, so that two such
// services cannot be set bouncing packets at each other.
func (g *Chargen) OnPacket(w api.PacketWriter, _ []byte, from netip.AddrPort) {
	if api.IsReflectorPort(from.Port()) {
		return
	}
	first := (g.lines.Add(DatagramLines) - DatagramLines) % Lines
	off := int(first) * LineBytes
	var buf [DatagramSize]byte
	copy(buf[:DatagramSize-2], stream[off:])
	buf[DatagramSize-2], buf[DatagramSize-1] = '\r', '\n'
	// A full queue drops the answer, as the network may.
	_ = w.WriteTo(buf[:], from)
}
