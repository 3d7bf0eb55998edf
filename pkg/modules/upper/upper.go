// Package upper is a small example module: it echoes each line with its
// ASCII letters upper-cased. Copy it to start a module of your own.
package upper

import (
	"bytes"

	"github.com/netd/netd/pkg/modules/api"
)

// maxLine bounds the unfinished line the loop keeps for us, so that a
// client that never sends \n cannot make it grow without end.
const maxLine = 64 << 10

// ReasonLineTooLong is the reason a connection closes with when its line
// reaches maxLine without a \n. A module names its own reasons: any string
// is a label of netd_connections_closed_total.
const ReasonLineTooLong api.Reason = "line_too_long"

// Upper is one instance of the module, serving one listener. StreamBase
// supplies the callbacks upper has nothing to do in: it waits for the
// client, answers only input and keeps nothing to release.
type Upper struct{ api.StreamBase }

var (
	_ api.Module        = (*Upper)(nil)
	_ api.StreamHandler = (*Upper)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "upper",
		Description: "echoes each line with its ASCII letters upper-cased",
		New:         func() api.Module { return new(Upper) },
	})
}

// Provision implements api.Module. Upper has no options; decoding into an
// empty struct makes any option an error.
func (*Upper) Provision(s api.Setup) error { return s.Options.Decode(&struct{}{}) }

// OnReadable implements api.StreamHandler: complete lines go back; the rest
// waits in the loop's input until its \n arrives or the client half-closes.
func (*Upper) OnReadable(c api.Conn) {
	in := c.Inbound()
	n := bytes.LastIndexByte(in, '\n') + 1
	if c.InputClosed() {
		n = len(in)
	} else if len(in)-n >= maxLine {
		c.CloseFor(ReasonLineTooLong, nil)
		return
	}
	// One allocation per read keeps the example short; the echo module
	// shows how to answer without any.
	out := make([]byte, n)
	for i, b := range in[:n] {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	_, _ = c.Write(out)
	c.Consume(n)
	if c.InputClosed() {
		_ = c.Close()
	}
}
