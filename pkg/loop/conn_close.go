package loop

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// Close implements api.Conn. Loop only.
func (c *conn) Close() error {
	if c.closed || c.flags&flagClosing != 0 {
		return nil
	}
	reason, err := api.ReasonDone, error(nil)
	switch {
	case c.flags&flagWriteFailed != 0:
		reason, err = api.ReasonError, errWriteFailed
	case c.loop.engine.draining.Load():
		reason = api.ReasonShutdown
	case c.flags&flagInputClosed != 0:
		reason = api.ReasonClient
	}
	c.CloseFor(reason, err)
	return nil
}

// CloseFor implements api.Conn: flush, half-close, wait (bounded) for the
// peer's EOF, close. Loop only.
func (c *conn) CloseFor(reason api.Reason, err error) {
	if c.closed || c.flags&flagClosing != 0 {
		return
	}
	if c.flags&flagConnecting != 0 && c.buffered() == 0 {
		// Nothing to flush and never connected: OnClose now, no OnAccept.
		c.closeNow(reason, err)
		return
	}
	c.flags |= flagClosing
	c.ensureExtra().closing = closeState{reason: reason, err: err, since: c.loop.now.UnixNano()}
	c.flags &^= flagPausedByModule | flagPausedByWatermark | flagWantWritable
	c.setList(&c.loop.lingering)
	if c.buffered() == 0 && c.flags&flagConnecting == 0 {
		c.finishClose()
		return
	}
	if c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// finishClose runs once output is flushed: close at once when the peer has
// finished sending, else half-close and linger for its EOF.
func (c *conn) finishClose() {
	if c.extra.tls != nil && c.tlsCloseNotify() {
		return // close_notify is queued: finishClose runs again once it is flushed
	}
	if c.flags&flagInputClosed != 0 {
		c.endClose()
		return
	}
	c.shutWrite()
	if !c.closed && c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// endClose closes a gracefully closing connection at once, with the
// reason and error its CloseFor was given.
func (c *conn) endClose() {
	c.closeNow(c.extra.closing.reason, c.extra.closing.err)
}

// discardInput reads and drops input while lingering; EOF ends the
// linger, and so does a read error.
func (c *conn) discardInput() {
	n, err := rawRead(int(c.fd), c.loop.readBuf)
	switch {
	case n > 0:
		c.countIn(n)
		// Past LingerTimeout this renews nothing: a peer that keeps
		// sending cannot hold the close open.
		c.touch()
	case n == 0 && err == nil:
		c.flags |= flagInputClosed
		if c.buffered() == 0 {
			c.endClose()
		} else {
			c.updateInterest()
		}
	case err == unix.EAGAIN || err == unix.EINTR:
	default:
		c.endClose()
	}
}

// Abort implements api.Conn. A zero linger makes the close send a TCP
// reset, so that the peer cannot take an aborted exchange for a complete
// one; a unix socket's peer sees ECONNRESET on its next read anyway, or
// end-of-file when nothing was in flight. Loop only.
func (c *conn) Abort(reason api.Reason, err error) {
	if c.closed {
		return
	}
	// TCP only: a unix socket or a pipe has no reset to send.
	if c.remoteFamily != 0 && c.flags&flagConnecting == 0 {
		_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	c.closeNow(reason, err)
}

// closeNow closes the descriptor, discards queued output and tells the
// module. Safe inside a callback: later calls see closed.
func (c *conn) closeNow(reason api.Reason, err error) {
	if c.closed {
		return
	}
	c.closed = true
	// Closing a descriptor takes it out of epoll only when no other
	// descriptor shares its file, and any fork (an upgrade, an exec
	// module's child) shares every descriptor until the child execs. A
	// registration left behind would report events for this connection
	// under the number the next accept reuses. A hung-up connection has
	// left epoll already (see hungUp).
	if c.flags&flagHungUp == 0 {
		c.loop.removeFD(int(c.fd))
	} else {
		c.loop.conns[c.fd] = nil
	}
	if c.extra != nil && c.extra.tls != nil {
		c.tlsRelease()
	}
	// Counted before the descriptor closes, so that whoever sees the
	// connection end (the peer, a test) finds it counted already.
	if c.flags&flagOutbound != 0 {
		c.lis.engine.outbound.Add(-1)
	} else {
		c.lis.stats[c.loop.index].closed(reason)
		c.lis.active.Add(-1)
		c.lis.engine.active.Add(-1)
		c.loop.served.Add(-1)
	}
	_ = unix.Close(int(c.fd))
	c.dropOutput()
	c.keptInput = nil
	if l := c.loop; l.delivering == c {
		l.inbound, l.consumed = nil, 0
	}
	c.setList(nil)
	if c.extra != nil && c.extra.edge != nil {
		c.edgeClosed(reason, err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if c.lis.panicLog.Allow(c.loop.now) {
					c.lis.log.Error("module panicked in OnClose", "panic", fmt.Sprint(r))
				}
			}
		}()
		c.handler().OnClose(c, reason, err)
	}()
	if c.lis.active.Load() == 0 && c.lis.closed.Load() && !c.lis.engine.draining.Load() {
		c.lis.stopModule()
	}
	c.lis.engine.checkDrained()
}

// drain is the connection's part of Shutdown. The connection goes on
// being served, so that whatever its client sends, even in the moment the
// drain begins, is answered; once its client has sent nothing for
// LingerQuiet, finishDrain closes it, gracefully, so that what is queued
// is still flushed (within the linger's bounds). Output alone does not
// count as activity here: a connection that only sends (chargen, a long
// download) would otherwise hold the drain until shutdown_timeout.
func (c *conn) drain() {
	if c.closed || c.flags&flagClosing != 0 {
		return
	}
	c.setList(&c.loop.draining)
}

// finishDrain ends a quiet draining connection: its module has the last
// word (OnDrain), else it closes gracefully.
func (c *conn) finishDrain() {
	c.setList(nil)
	if d, ok := c.handler().(api.Drainer); ok {
		c.callback(d.OnDrain)
		if c.closed || c.flags&flagClosing != 0 {
			return
		}
	}
	c.CloseFor(api.ReasonShutdown, nil)
}
