// Package echo is netd's echo module: line echo by default, as the Python
// server netd replaces did (its defects fixed), or RFC 862 echo, on TCP,
// unix sockets and UDP.
package echo

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/modules/api"
)

// Modes of the echo module.
const (
	ModeLine = "line" // echo complete lines; the default
	ModeRaw  = "raw"  // RFC 862: echo every byte as it arrives
)

// Bounds of max_line_bytes.
const (
	// DefaultMaxLineBytes is max_line_bytes when the config leaves it out.
	DefaultMaxLineBytes = 64 << 10
	// MinMaxLineBytes is the smallest max_line_bytes: one byte and its \n.
	MinMaxLineBytes = 2
	// MaxMaxLineBytes is the largest max_line_bytes. Echo leaves the partial
	// line in the loop's input, and the loop aborts a connection holding
	// more than api.DefaultMaxInput of it; above that bound the loop would
	// close the connection with reason "error" before echo could say
	// "line_too_long".
	MaxMaxLineBytes = api.DefaultMaxInput
)

// ReasonLineTooLong is the reason a connection closes with when a line
// exceeds max_line_bytes: the reason label line_too_long of
// netd_connections_closed_total.
const ReasonLineTooLong api.Reason = "line_too_long"

// ErrLineTooLong is the error a connection closes with when a line exceeds
// max_line_bytes.
var ErrLineTooLong = errors.New("netd: echo: line longer than max_line_bytes")

// Options are the echo module's options.
type Options struct {
	// Mode is "line" (the default) or "raw".
	Mode string `option:"mode"`
	// MaxLineBytes bounds a line, its \n included, in line mode.
	MaxLineBytes int `option:"max_line_bytes"`
}

// Echo is one echo instance, serving one listener. Its callbacks keep no
// per-connection state: what a line mode connection has not finished stays
// in the loop's input.
type Echo struct {
	api.StreamBase // echo waits for the client, answers only input, keeps nothing

	raw     bool
	maxLine int
	log     hclog.Logger
	// tooLongLog keeps the line-too-long warning, which any client can
	// trigger, to one a second.
	tooLongLog api.LogLimit
}

var (
	_ api.Module        = (*Echo)(nil)
	_ api.StreamHandler = (*Echo)(nil)
	_ api.PacketHandler = (*Echo)(nil)
	_ api.Drainer       = (*Echo)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "echo",
		Description: "sends back what it receives: complete lines (mode line) or every byte (mode raw, RFC 862); datagrams as they are",
		New:         func() api.Module { return new(Echo) },
	})
}

// Provision implements api.Module.
func (e *Echo) Provision(s api.Setup) error {
	opts := Options{Mode: ModeLine, MaxLineBytes: DefaultMaxLineBytes}
	if err := s.Options.Decode(&opts); err != nil {
		return err
	}
	switch opts.Mode {
	case ModeLine, ModeRaw:
	default:
		return s.Options.Errorf("mode", "mode must be %q or %q, not %q", ModeLine, ModeRaw, opts.Mode)
	}
	if opts.MaxLineBytes < MinMaxLineBytes || opts.MaxLineBytes > MaxMaxLineBytes {
		return s.Options.Errorf("max_line_bytes", "max_line_bytes must be between %d and %d, not %d",
			MinMaxLineBytes, MaxMaxLineBytes, opts.MaxLineBytes)
	}
	e.raw = opts.Mode == ModeRaw
	e.maxLine = opts.MaxLineBytes
	e.log = s.Logger
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	return nil
}

// OnReadable implements api.StreamHandler. It allocates nothing: the lines
// go out in one Write straight from the loop's input, and the partial line
// stays there.
func (e *Echo) OnReadable(c api.Conn) {
	in := c.Inbound()
	if e.raw {
		e.echo(c, in)
		if c.InputClosed() {
			_ = c.Close()
		}
		return
	}
	n, tooLong := e.lines(in)
	if tooLong {
		// The complete lines before the long one were fine: they go back.
		e.echo(c, in[:n])
		if e.tooLongLog.Allow(c.Loop().Now()) {
			e.log.Warn("line too long, closing connection", "remote", remote(c), "limit", e.maxLine)
		}
		c.CloseFor(ReasonLineTooLong, fmt.Errorf("%w (%d)", ErrLineTooLong, e.maxLine))
		return
	}
	if c.InputClosed() {
		// Nothing more comes: the last line is complete without its \n.
		n = len(in)
	}
	e.echo(c, in[:n])
	if c.InputClosed() {
		_ = c.Close()
	}
}

// lines returns the length of the complete lines at the start of in, and
// whether in holds a line longer than the limit. A run of maxLine bytes
// without a \n is too long whether or not its \n has arrived, so the answer
// does not depend on how the input was split into reads, nor on the client
// half-closing right after it.
func (e *Echo) lines(in []byte) (n int, tooLong bool) {
	if len(in) < e.maxLine {
		// No run can reach the limit: the fast path, one scan from the end.
		return bytes.LastIndexByte(in, '\n') + 1, false
	}
	for {
		i := bytes.IndexByte(in[n:], '\n')
		if i < 0 {
			return n, len(in)-n >= e.maxLine
		}
		if i >= e.maxLine {
			return n, true
		}
		n += i + 1
	}
}

// echo writes p back and consumes it. A failed Write means the connection
// is closing, when there is no one left to echo to.
func (e *Echo) echo(c api.Conn, p []byte) {
	if len(p) == 0 {
		return
	}
	_, _ = c.Write(p)
	c.Consume(len(p))
}

// OnDrain implements api.Drainer: on shutdown a partial line goes back too,
// so that nothing the client sent is lost, then the connection closes.
func (e *Echo) OnDrain(c api.Conn) {
	e.echo(c, c.Inbound())
	_ = c.Close()
}

// OnPacket implements api.PacketHandler: each datagram goes back as it is,
// in both modes, except to the ports of the small services, so that two
// reflectors cannot be set bouncing packets at each other.
func (e *Echo) OnPacket(w api.PacketWriter, p []byte, from netip.AddrPort) {
	if api.IsReflectorPort(from.Port()) {
		return
	}
	// A full queue drops the datagram, as the network may; UDP echo owes
	// no one a retry.
	_ = w.WriteTo(p, from)
}

// remote names the peer for the log.
func remote(c api.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}
