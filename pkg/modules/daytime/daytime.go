// Package daytime is netd's daytime module, RFC 867: it sends the local
// date and time as one line, in the format of xinetd's built-in service,
// once per TCP or unix connection (then closes) and once per UDP datagram.
package daytime

import (
	"net/netip"
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// maxLine bounds a line: "02 JAN 2006 15:04:05 " is 21 bytes, a zone
// abbreviation a handful more, and CRLF 2.
const maxLine = 64

var months = [12]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// AppendLine appends the daytime line for t, in t's own location, to b:
// the day of the month in two digits, the month's abbreviation in capitals,
// the year, the time of day and the zone's abbreviation, ending in CRLF, as
// xinetd sends it: "07 FEB 2036 12:00:02 IST\r\n".
func AppendLine(b []byte, t time.Time) []byte {
	b = t.AppendFormat(b, "02 ")
	b = append(b, months[t.Month()-1]...)
	b = t.AppendFormat(b, " 2006 15:04:05 MST")
	return append(b, '\r', '\n')
}

// Daytime is one daytime instance, serving one listener.
type Daytime struct {
	api.StreamBase // OnWritable, OnClose: one line, then nothing to do

	// now is the clock; tests replace it. It returns local time.
	now func() time.Time
}

var (
	_ api.Module        = (*Daytime)(nil)
	_ api.StreamHandler = (*Daytime)(nil)
	_ api.PacketHandler = (*Daytime)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "daytime",
		Description: "RFC 867: sends the local date and time as one line, xinetd's format, per connection (then closes) or per datagram",
		New:         func() api.Module { return &Daytime{now: time.Now} },
	})
}

// Provision implements api.Module. Daytime has no options: decoding into an
// empty struct makes any option a FILE:LINE:COL error.
func (d *Daytime) Provision(s api.Setup) error {
	if d.now == nil {
		d.now = time.Now
	}
	return s.Options.Decode(&struct{}{})
}

// line formats the current time into buf's storage.
func (d *Daytime) line(buf *[maxLine]byte) []byte {
	now := time.Now
	if d.now != nil {
		now = d.now
	}
	return AppendLine(buf[:0], now())
}

// OnAccept implements api.StreamHandler: daytime speaks first, once, and
// closes; the loop flushes the line before it closes the socket.
func (d *Daytime) OnAccept(c api.Conn) {
	var buf [maxLine]byte
	_, _ = c.Write(d.line(&buf))
	_ = c.Close()
}

// OnReadable implements api.StreamHandler. What the client sends is
// ignored; the connection is already closing.
func (d *Daytime) OnReadable(c api.Conn) {
	c.Consume(len(c.Inbound()))
	if c.InputClosed() {
		_ = c.Close()
	}
}

// OnPacket implements api.PacketHandler: each datagram, whatever it holds,
// is answered with the line, except datagrams from ports below 1024, so
// that two such services cannot be set bouncing packets at each other.
func (d *Daytime) OnPacket(w api.PacketWriter, _ []byte, from netip.AddrPort) {
	if api.IsReflectorPort(from.Port()) {
		return
	}
	var buf [maxLine]byte
	// A full queue drops the answer, as the network may.
	_ = w.WriteTo(d.line(&buf), from)
}
