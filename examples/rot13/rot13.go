// Package rot13 is an example of a netd module kept outside netd's tree:
// it echoes each line with its ASCII letters rotated by 13 places. The
// netd that serves it is built by cmd/netd-rot13, three lines of Go.
package rot13

import (
	"bytes"

	"github.com/netd/netd/pkg/modules/api"
)

// DefaultMaxLine bounds an unfinished line when max_line_bytes is not set.
const DefaultMaxLine = 4096

// ReasonLineTooLong is the reason a connection closes with when a line is
// longer than max_line_bytes: the label of netd_connections_closed_total.
const ReasonLineTooLong api.Reason = "line_too_long"

// Options are the module's options.
type Options struct {
	// MaxLineBytes bounds a line, its \n included; a longer one closes the
	// connection, so that a client that never sends \n cannot make the
	// loop hold its input without end.
	MaxLineBytes int `option:"max_line_bytes"`
}

// Rot13 is one instance of the module, serving one listener. It keeps no
// state: what a connection has not finished stays in the loop's input.
type Rot13 struct {
	api.StreamBase // rot13 waits for the client, answers only input, keeps nothing

	maxLine int
}

var (
	_ api.Module        = (*Rot13)(nil)
	_ api.StreamHandler = (*Rot13)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "rot13",
		Description: "echoes each line with its ASCII letters rotated by 13 (an out-of-tree example module)",
		New:         func() api.Module { return new(Rot13) },
	})
}

// Provision implements api.Module.
func (r *Rot13) Provision(s api.Setup) error {
	opts := Options{MaxLineBytes: DefaultMaxLine}
	if err := s.Options.Decode(&opts); err != nil {
		return err
	}
	if opts.MaxLineBytes < 2 || opts.MaxLineBytes > 1<<20 {
		return s.Options.Errorf("max_line_bytes", "max_line_bytes must be between 2 and 1048576, not %d", opts.MaxLineBytes)
	}
	r.maxLine = opts.MaxLineBytes
	return nil
}

// OnReadable implements api.StreamHandler: complete lines go back
// rotated; the rest waits in the loop's input until its \n arrives, or
// goes back as it is once the client half-closes.
func (r *Rot13) OnReadable(c api.Conn) {
	in := c.Inbound()
	n := bytes.LastIndexByte(in, '\n') + 1
	if c.InputClosed() {
		n = len(in)
	} else if len(in)-n >= r.maxLine {
		c.CloseFor(ReasonLineTooLong, nil)
		return
	}
	if n > 0 {
		out := make([]byte, n)
		for i, b := range in[:n] {
			out[i] = Rotate(b)
		}
		_, _ = c.Write(out)
		c.Consume(n)
	}
	if c.InputClosed() {
		_ = c.Close()
	}
}

// Rotate rotates an ASCII letter by 13 places and leaves any other byte
// as it is.
func Rotate(b byte) byte {
	switch {
	case 'a' <= b && b <= 'z':
		return 'a' + (b-'a'+13)%26
	case 'A' <= b && b <= 'Z':
		return 'A' + (b-'A'+13)%26
	}
	return b
}
