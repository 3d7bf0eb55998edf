package loop

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// errWriteFailed is the close error of a connection whose writes failed
// and whose remaining input was then delivered.
var errWriteFailed = errors.New("write failed: the peer stopped reading")

// Write implements api.Conn: straight to the kernel when nothing is
// queued, and only the rest is copied. Once more than the listener's high
// watermark is queued the loop stops reading the connection, until flush
// brings the queue down to the low watermark: a peer that sends without
// reading cannot make the daemon buffer without bound. Loop only.
func (c *conn) Write(p []byte) (int, error) {
	if c.closed || c.flags&(flagClosing|flagShutWritePending|flagWriteShut) != 0 {
		return 0, api.ErrClosed
	}
	if c.extra != nil && c.extra.tls != nil {
		return c.tlsWrite(p)
	}
	return c.writeRaw(p)
}

// writeRaw is Write below the TLS layer: the bytes go to the socket as
// they are.
func (c *conn) writeRaw(p []byte) (int, error) {
	total := len(p)
	if c.out == nil && len(p) > 0 && c.flags&flagConnecting == 0 {
		n, err := rawWrite(int(c.fd), p)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			c.writeFailed(err)
			return 0, err
		}
		if n > 0 {
			c.countOut(n)
			p = p[n:]
			c.touchOutput()
		}
	}
	if len(p) > 0 {
		c.queue(p)
		if c.out.n > c.lis.spec.HighWatermark && c.flags&flagPausedByWatermark == 0 {
			c.flags |= flagPausedByWatermark
			c.lis.stats[c.loop.index].readsPaused.Add(1)
		}
		if c.flags&flagInCallback == 0 {
			c.updateInterest()
		}
	}
	return total, nil
}

// Buffered implements api.Conn. Loop only.
func (c *conn) Buffered() int { return c.buffered() }

// buffered returns the bytes of output queued.
func (c *conn) buffered() int {
	if c.out == nil {
		return 0
	}
	return c.out.n
}

// queue copies p behind the queued output.
func (c *conn) queue(p []byte) {
	if c.out == nil {
		c.out = c.loop.getOutQueue()
	}
	c.out.append(p, &c.loop.pool)
}

// dropOutput discards queued output and gives the queue back to the loop.
func (c *conn) dropOutput() {
	if c.out != nil {
		c.loop.putOutQueue(c.out)
		c.out = nil
	}
}

// handleWritable flushes queued output. Once all of it is sent, it goes
// on with a graceful close or a half-close that waited for the flush, or
// calls OnWritable when that is owed (queued output has drained) or
// wanted (WantWritable).
func (c *conn) handleWritable() {
	if c.buffered() > 0 {
		if !c.flush() {
			return
		}
	}
	if c.buffered() > 0 {
		c.updateInterest()
		return
	}
	if c.flags&flagClosing != 0 {
		c.finishClose()
		return
	}
	if c.flags&flagShutWritePending != 0 && c.flags&flagWriteShut == 0 {
		c.shutWrite()
	}
	if c.flags&(flagOnWritableOwed|flagWantWritable) != 0 {
		c.flags &^= flagOnWritableOwed
		c.callback(c.handler().OnWritable)
		return
	}
	c.updateInterest()
}

// flush writes queued output with writev until the kernel takes no more,
// resumes reading at the low watermark, and marks OnWritable owed once
// the queue is empty. It reports false when the connection was closed by
// an error.
func (c *conn) flush() bool {
	for c.out != nil && c.out.n > 0 {
		c.loop.writevBufs = c.out.views(c.loop.writevBufs[:0])
		n, err := c.loop.writev(int(c.fd), c.loop.writevBufs)
		if err != nil {
			if err == unix.EAGAIN {
				break
			}
			c.writeFailed(err)
			return !c.closed
		}
		c.countOut(n)
		c.out.advance(n, &c.loop.pool)
		c.touchOutput()
		if n == 0 {
			break
		}
	}
	if c.out != nil && c.out.n == 0 {
		c.dropOutput()
	}
	if c.flags&flagPausedByWatermark != 0 && c.buffered() <= c.lis.spec.LowWatermark {
		c.flags &^= flagPausedByWatermark
		c.redeliver()
	}
	if c.buffered() == 0 {
		c.flags |= flagOnWritableOwed
	}
	return true
}

// WantWritable implements api.Conn. Loop only.
func (c *conn) WantWritable(on bool) {
	if on {
		c.flags |= flagWantWritable
	} else {
		c.flags &^= flagWantWritable
	}
	if c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// CloseWrite implements api.Conn. Loop only.
func (c *conn) CloseWrite() error {
	if c.closed || c.flags&flagClosing != 0 {
		return api.ErrClosed
	}
	c.flags |= flagShutWritePending
	if c.buffered() == 0 {
		c.shutWrite()
	}
	return nil
}

// shutWrite half-closes: the peer reads end-of-file after the output sent.
func (c *conn) shutWrite() {
	if c.flags&flagWriteShut != 0 {
		return
	}
	if c.extra != nil && c.extra.tls != nil && c.tlsCloseNotify() {
		return // close_notify is queued: shutWrite runs again once it is flushed
	}
	c.flags |= flagWriteShut
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
		c.closeNow(api.ReasonError, err)
	}
}

// writeFailed handles a write error or a socket error (EPOLLERR). A
// closing connection closes at once. Otherwise its output is dropped, but
// not its input: a peer that sent a request and went away without reading
// (a child process that answered and exited, say) may have left bytes the
// module has yet to see. Reading goes on to the peer's end, and the
// connection closes, ReasonError, once the module has consumed the rest.
func (c *conn) writeFailed(err error) {
	if c.flags&flagClosing != 0 {
		c.closeNow(api.ReasonError, err)
		return
	}
	// remoteString allocates: a flood of vanishing clients must not pay
	// for a line nobody logs.
	if c.lis.log.IsDebug() {
		c.lis.log.Debug("write failed; delivering the peer's remaining input", "remote", c.remoteString(), "error", err)
	}
	c.flags |= flagWriteFailed | flagWriteShut
	c.flags &^= flagPausedByWatermark | flagWantWritable
	c.dropOutput()
	c.redeliver()
	c.closeIfSpent()
	if !c.closed && c.flags&flagInCallback == 0 {
		c.updateInterest()
	}
}

// closeIfSpent closes a connection whose writes failed after its module
// was shown end-of-file, once the module has consumed the rest: nothing
// can go either way any more.
func (c *conn) closeIfSpent() {
	if !c.closed && c.flags&(flagWriteFailed|flagInputClosed) == flagWriteFailed|flagInputClosed && len(c.kept()) == 0 {
		c.closeNow(api.ReasonError, errWriteFailed)
	}
}
