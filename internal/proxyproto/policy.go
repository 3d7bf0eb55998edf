package proxyproto

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netd/netd/internal/access"
)

// DefaultTimeout is how long a connection from a trusted source may take to
// send its header when the listener does not say (proxy_protocol.timeout).
const DefaultTimeout = 3 * time.Second

// Mode is a listener's proxy_protocol mode.
type Mode uint8

// The modes. Require: every connection comes through a trusted proxy and
// carries a header. Optional: trusted sources may send a header, and any
// other client is served as itself.
const (
	Require Mode = iota + 1
	Optional
)

// ParseMode parses "require" or "optional".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "require":
		return Require, nil
	case "optional":
		return Optional, nil
	}
	return 0, fmt.Errorf("mode %q: want require or optional", s)
}

func (m Mode) String() string {
	switch m {
	case Require:
		return "require"
	case Optional:
		return "optional"
	}
	return fmt.Sprintf("mode(%d)", m)
}

// Action is what the loop does next with a connection (or a datagram).
type Action uint8

// The actions.
const (
	// Close the connection (drop the datagram) before the module sees it.
	Close Action = iota + 1
	// Pass the bytes to the module as they are, with the socket's own peer.
	Pass
	// Wait for more bytes (up to the timeout) and ask Next again.
	Wait
	// Use the header Next framed: skip its n bytes, and take the client
	// address from it (Header.Client).
	Use
)

var actionNames = [...]string{"", "close", "pass", "wait", "use"}

func (a Action) String() string {
	if int(a) < len(actionNames) && a != 0 {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// Policy is the PROXY protocol setting of one listener. It is immutable once
// made and may be shared by every loop.
//
// A header is honoured only from a Trusted source. Require closes a
// connection from any other source at once, and one from a trusted source
// whose header is missing, bad or late. Optional serves any other source as
// itself without looking at its bytes (so a forged header reaches the module
// as data and changes no address), and a trusted source without a header as
// itself too; a bad or unfinished header from a trusted source is closed in
// both modes, since a proxy that starts a header and breaks it is broken.
type Policy struct {
	Mode    Mode
	Trusted *access.Set
	Timeout time.Duration // 0: DefaultTimeout
}

// Validate checks p; its error names the setting at fault.
func (p *Policy) Validate() error {
	if p.Mode != Require && p.Mode != Optional {
		return fmt.Errorf("mode %s: want require or optional", p.Mode)
	}
	if p.Trusted.Len() == 0 {
		return errors.New("trusted: list at least one CIDR: a header is honoured only from a trusted source")
	}
	if p.Timeout < 0 {
		return fmt.Errorf("timeout %s: must not be negative", p.Timeout)
	}
	return nil
}

// HeaderTimeout is the time a trusted source has to send its header.
func (p *Policy) HeaderTimeout() time.Duration {
	if p.Timeout == 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

// Accept decides on a new connection from peer before any byte is read:
// Close (for ErrUntrusted), Pass, or Wait for its header.
func (p *Policy) Accept(peer netip.Addr) Action {
	switch {
	case p.Trusted.Contains(peer):
		return Wait
	case p.Mode == Optional:
		return Pass
	}
	return Close
}

// Next decides on a connection from a trusted source that Accept told to
// Wait, given every byte read from it so far and whether its header timeout
// has passed. With Use, n is the header's length; the bytes after it are the
// client's. The error says why a connection is closed (for the log line).
func (p *Policy) Next(buf []byte, timedOut bool) (a Action, n int, err error) {
	n, err = Frame(buf)
	switch {
	case n > 0:
		return Use, n, nil
	case errors.Is(err, ErrNoHeader):
		if p.Mode == Optional {
			return Pass, 0, nil
		}
		return Close, 0, err
	case err != nil:
		return Close, 0, err
	case !timedOut:
		return Wait, 0, nil
	case len(buf) == 0 && p.Mode == Optional:
		return Pass, 0, nil // a client that waits for the server to speak first
	}
	return Close, 0, ErrTimeout
}

// Datagram decides on one datagram from peer: Close (drop it), Pass (the
// whole datagram is the payload, from peer), or Use (the header h states the
// client; payload follows it). On UDP every datagram carries its own header.
func (p *Policy) Datagram(peer netip.Addr, d []byte) (a Action, h *Header, payload []byte, err error) {
	if !p.Trusted.Contains(peer) {
		if p.Mode == Optional {
			return Pass, nil, d, nil
		}
		return Close, nil, nil, ErrUntrusted
	}
	h, payload, err = ParseDatagram(d)
	switch {
	case err == nil:
		return Use, h, payload, nil
	case errors.Is(err, ErrNoHeader) && p.Mode == Optional:
		return Pass, nil, d, nil
	}
	return Close, nil, nil, err
}

var (
	// ErrUntrusted: mode require, and the source is not trusted.
	ErrUntrusted = errors.New("netd: PROXY protocol required, and the source is not trusted")
	// ErrTimeout: a trusted source sent no whole header in time.
	ErrTimeout = errors.New("netd: no whole PROXY protocol header before the timeout")
)
