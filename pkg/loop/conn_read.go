package loop

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// readOnce reads once into the loop's buffer and hands the bytes, or
// end-of-file, to the module. It reports whether the read returned bytes
// or EOF (as opposed to nothing yet, or an error, which closes the
// connection).
func (c *conn) readOnce() bool {
	if x := c.extra; x != nil {
		if x.edge != nil && x.edge.waiting {
			return c.headerReadOnce()
		}
		if x.tls != nil {
			return c.tlsReadOnce()
		}
	}
	n, err := rawRead(int(c.fd), c.loop.readBuf)
	switch {
	case n > 0:
		c.countIn(n)
		c.touch()
		c.deliver(c.loop.readBuf[:n])
		return true
	case n == 0 && err == nil:
		if c.flags&flagWriteFailed != 0 {
			// The peer went without reading what it was sent: an abort,
			// not a clean end, so the module is not shown end-of-file.
			// It has been shown every byte that came before.
			c.closeNow(api.ReasonError, errWriteFailed)
			return false
		}
		c.flags |= flagInputClosed
		c.deliver(nil)
		c.updateInterest()
		return true
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	default:
		c.closeNow(api.ReasonError, err)
		return false
	}
}

// maxIdleKeptCap bounds the kept-input buffer a connection holds on to
// once the module has consumed everything: one long line must not pin its
// memory for good.
const maxIdleKeptCap = 4096

// deliver shows the module its unconsumed input followed by fresh bytes,
// then keeps what it left. Fresh bytes are shown in the loop's buffer,
// without a copy, unless input is kept already. While OnReadable runs,
// the loop's delivering, inbound and consumed say what Inbound shows and
// what the module has taken of it; they are saved and restored around the
// callback, so that a delivery nested in another's callback leaves the
// outer one's intact.
func (c *conn) deliver(fresh []byte) {
	l := c.loop
	input := fresh
	if c.keptInput != nil && len(*c.keptInput) > 0 {
		*c.keptInput = append(*c.keptInput, fresh...)
		input = *c.keptInput
	}
	outerConn, outerInbound, outerConsumed := l.delivering, l.inbound, l.consumed
	l.delivering, l.inbound, l.consumed = c, input, 0
	c.callback(c.handler().OnReadable)
	input, consumed := l.inbound, l.consumed
	l.delivering, l.inbound, l.consumed = outerConn, outerInbound, outerConsumed
	if c.closed {
		return
	}
	rest := input[consumed:]
	switch {
	case len(rest) == 0:
		if c.keptInput != nil {
			if cap(*c.keptInput) > maxIdleKeptCap {
				*c.keptInput = nil
			} else {
				*c.keptInput = (*c.keptInput)[:0]
			}
		}
	case c.keptInput == nil || len(*c.keptInput) == 0:
		if c.keptInput == nil {
			c.keptInput = new([]byte)
		}
		*c.keptInput = append(*c.keptInput, rest...)
	default:
		*c.keptInput = (*c.keptInput)[:copy(*c.keptInput, rest)]
	}
	if len(c.kept()) > c.lis.spec.MaxInput {
		if c.lis.inputLog.Allow(c.loop.now) {
			c.lis.log.Warn("input bound exceeded; connection closed", "remote", c.remoteString(), "limit", c.lis.spec.MaxInput)
		}
		c.closeNow(api.ReasonError, fmt.Errorf("more than %d bytes of unconsumed input", c.lis.spec.MaxInput))
	}
}

// Inbound implements api.Conn. Inside OnReadable it shows the loop's
// buffer without a copy; in any other callback, the input kept so far.
// Loop only.
func (c *conn) Inbound() []byte {
	if l := c.loop; l.delivering == c {
		return l.inbound[l.consumed:]
	}
	return c.kept()
}

// Consume implements api.Conn. Loop only.
func (c *conn) Consume(n int) {
	l := c.loop
	if l.delivering != c {
		if c.keptInput != nil {
			in := *c.keptInput
			n = min(max(n, 0), len(in))
			*c.keptInput = in[:copy(in, in[n:])]
		}
		return
	}
	if n < 0 || l.consumed+n > len(l.inbound) {
		n = len(l.inbound) - l.consumed
	}
	l.consumed += n
}

// InputClosed implements api.Conn. Loop only.
func (c *conn) InputClosed() bool { return c.flags&flagInputClosed != 0 }

// kept returns the input kept between reads: what the module left
// unconsumed.
func (c *conn) kept() []byte {
	if c.keptInput == nil {
		return nil
	}
	return *c.keptInput
}

// PauseReading implements api.Conn. Loop only.
func (c *conn) PauseReading() {
	c.flags |= flagPausedByModule
	if c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// ResumeReading implements api.Conn. Loop only.
func (c *conn) ResumeReading() {
	c.flags &^= flagPausedByModule
	c.redeliver()
	if c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// redeliver queues the connection to show its module the input it kept,
// once the current event is done: after a pause ends, no new bytes may
// ever come to trigger a read.
func (c *conn) redeliver() {
	if c.flags&flagRedeliverQueued != 0 || len(c.kept()) == 0 || c.closed {
		return
	}
	c.flags |= flagRedeliverQueued
	c.loop.redeliverQueue = append(c.loop.redeliverQueue, c)
}

// deliverKept shows the module its kept input again, if it reads now.
func (c *conn) deliverKept() {
	c.flags &^= flagRedeliverQueued
	if c.closed || c.flags&(flagPausedByModule|flagPausedByWatermark|flagClosing) != 0 || len(c.kept()) == 0 {
		return
	}
	c.deliver(nil)
	if !c.closed && c.flags&flagHungUp != 0 && (len(c.kept()) == 0 || c.flags&flagClosing != 0) {
		c.closeNow(api.ReasonClient, nil)
		return
	}
	c.closeIfSpent()
}

// hungUp handles EPOLLHUP: both directions are shut (or a unix peer is
// gone), so nothing more can be sent. Level-triggered, HUP would fire for
// as long as the descriptor is in epoll, so the rest of the input is read
// now, whatever the module's pause, and the descriptor leaves epoll. The
// connection closes once the module has consumed what it was shown; input
// it left (a proxy whose other side is slow, say) is shown again when it
// resumes reading. Nothing the peer sent is dropped.
func (c *conn) hungUp() {
	// Bounded all the same, though the peer has stopped sending: the
	// loop never reads without a limit.
	for i := 0; i < 1024 && !c.closed && c.flags&flagInputClosed == 0; i++ {
		if !c.readOnce() {
			break
		}
	}
	if c.closed {
		return
	}
	if len(c.kept()) == 0 || c.flags&flagClosing != 0 {
		c.closeNow(api.ReasonClient, nil)
		return
	}
	c.flags |= flagHungUp | flagInputClosed
	_ = unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	c.interest = 0
}
