package loop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// Connection state bits.
const (
	flagInputClosed  uint16 = 1 << iota // read EOF
	flagPaused                          // the module paused reading
	flagWatermark                       // the loop paused reading: output above the high watermark
	flagWantWritable                    // the module wants OnWritable while the socket takes output
	flagClosing                         // graceful close in progress: flushing, then lingering
	flagCloseWrite                      // half-close once output is flushed
	flagWriteShut                       // shutdown(SHUT_WR) done
	flagInCallback                      // a module callback is running
	flagDrained                         // OnWritable is owed: output was queued and has drained
	flagConnecting                      // a Dial in progress
	flagOutbound                        // dialed or attached, not accepted: outside the listener's limits
	flagRedeliver                       // queued on the loop to show the module its kept input again
	flagHungUp                          // the peer is gone both ways: out of epoll, finishing kept input
	flagWriteFailed                     // a write failed (EPIPE, ECONNRESET): output is dropped, input is still read
)

// errWriteFailed is the close error of a connection whose writes failed
// and whose remaining input was then delivered.
var errWriteFailed = errors.New("write failed: the peer stopped reading")

// conn is one stream connection. Only its loop touches it.
//
// An idle connection costs what this struct costs, so what only some
// connections need lives behind pointers that stay nil for most: kept
// input, queued output, and the rest (connExtra). What Inbound shows during
// OnReadable is the loop's (eventLoop.cur), since one OnReadable runs at a
// time per loop. 120 bytes on 64-bit platforms (the 128-byte size class);
// TestConnSize holds it there.
type conn struct {
	loop *eventLoop
	lis  *Listener

	// in holds input the module left unconsumed between reads; nil until
	// a read first leaves some.
	in *[]byte
	// out is output the kernel has not taken yet; nil while there is none.
	// The loop recycles the queues.
	out *outQueue
	// x is what few connections need: a dialed or attached connection's
	// handler, a graceful close's state. nil until then.
	x   *connExtra
	ctx any

	// Intrusive list links for the idle or lingering list; last is the
	// time of the last activity, in the loop clock's Unix nanoseconds.
	prev, next *conn
	list       *connList
	last       int64

	fd     int32
	events uint32 // the interest set registered with epoll
	gen    uint32 // the loop's number for that registration (eventLoop.gen)
	flags  uint16
	closed bool

	// The peer's address, compact: rfamily is 4 or 6 (raddr[:4] or raddr
	// holds the address), 0 for a unix socket.
	rfamily uint8
	rport   uint16
	raddr   [16]byte
}

// connExtra is the state few connections need.
type connExtra struct {
	// h serves a dialed or attached connection; nil for an accepted one,
	// which its listener's module serves.
	h api.StreamHandler
	// closing is what a graceful close (flagClosing) remembers until the
	// descriptor is closed.
	closing closeState
	// tls is the TLS layer of a connection on a TLS listener (tls.go).
	tls *tlsState
}

// closeState is what a graceful close remembers until the descriptor is
// closed.
type closeState struct {
	reason api.Reason
	err    error
	since  int64 // loop clock, Unix nanoseconds
}

var _ api.Conn = (*conn)(nil)

// newConn makes a connection on fd; h nil means the listener's module.
func newConn(l *eventLoop, lis *Listener, h api.StreamHandler, fd int) *conn {
	c := &conn{fd: int32(fd), loop: l, lis: lis}
	if h != nil {
		c.x = &connExtra{h: h}
	}
	return c
}

// handler returns the connection's module.
func (c *conn) handler() api.StreamHandler {
	if c.x != nil && c.x.h != nil {
		return c.x.h
	}
	return c.lis.stream
}

// extra returns the connection's connExtra, making it on first use.
func (c *conn) extra() *connExtra {
	if c.x == nil {
		c.x = new(connExtra)
	}
	return c.x
}

// setRemote records the peer's address; an invalid one (a unix socket's
// peer) records none.
func (c *conn) setRemote(ap netip.AddrPort) {
	a := ap.Addr()
	switch {
	case a.Is4():
		c.rfamily = 4
		a4 := a.As4()
		copy(c.raddr[:], a4[:])
	case a.Is6():
		c.rfamily = 6
		c.raddr = a.As16()
	default:
		c.rfamily = 0
		return
	}
	c.rport = ap.Port()
}

// remote returns the peer's address; zero for unix sockets.
func (c *conn) remote() netip.AddrPort {
	switch c.rfamily {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.raddr[:4])), c.rport)
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom16(c.raddr), c.rport)
	}
	return netip.AddrPort{}
}

// kept returns the input kept between reads.
func (c *conn) kept() []byte {
	if c.in == nil {
		return nil
	}
	return *c.in
}

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

// wantEvents computes the interest set from the state bits.
func (c *conn) wantEvents() uint32 {
	if c.flags&flagConnecting != 0 {
		return unix.EPOLLOUT
	}
	var ev uint32
	if c.flags&(flagInputClosed|flagPaused|flagWatermark) == 0 {
		ev |= unix.EPOLLIN
	}
	if c.flags&flagClosing != 0 && c.flags&flagWriteShut != 0 && c.flags&flagInputClosed == 0 {
		// Lingering: read and discard until the peer's EOF.
		ev |= unix.EPOLLIN
	}
	if c.buffered() > 0 || (c.flags&flagWantWritable != 0 && c.flags&(flagClosing|flagWriteShut) == 0) {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// updateEvents brings epoll's interest set in line with the state.
func (c *conn) updateEvents() {
	if c.closed || c.flags&flagHungUp != 0 {
		return
	}
	if want := c.wantEvents(); want != c.events {
		if err := c.loop.modify(int(c.fd), want); err != nil {
			c.closeNow(api.ReasonError, fmt.Errorf("epoll_ctl: %w", err))
			return
		}
		c.events = want
	}
}

func (c *conn) handleEvent(events uint32) {
	if c.flags&flagConnecting != 0 {
		c.connected()
		return
	}
	if events&unix.EPOLLERR != 0 {
		// A reset, or a unix peer that closed with our bytes unread. What
		// the peer sent before it is still in the receive queue, readable
		// ahead of the error: it is delivered, as after a failed write.
		// Reading SO_ERROR clears the error, so EPOLLERR does not fire
		// again.
		soerr, gerr := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr != nil || soerr == 0 {
			c.closeNow(api.ReasonError, errors.New("socket error"))
			return
		}
		c.writeFailed(unix.Errno(soerr))
		if c.closed {
			return
		}
		events &^= unix.EPOLLOUT
		c.updateEvents()
	}
	if events&unix.EPOLLOUT != 0 {
		c.handleWritable()
	}
	if c.closed {
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
		if c.flags&flagClosing != 0 {
			c.discardInput()
		} else if c.flags&flagInputClosed == 0 {
			c.handleReadable()
		}
	}
	if c.closed {
		return
	}
	if events&unix.EPOLLHUP != 0 {
		c.hungUp()
	}
}

// handleReadable reads once into the loop's buffer and hands the bytes to
// the module.
func (c *conn) handleReadable() { c.readOnce() }

// hungUp handles EPOLLHUP: both directions are shut (or a unix peer is
// gone), so nothing more can be sent. Level-triggered, HUP would fire for
// as long as the descriptor is in epoll, so the rest of the input is read
// now, whatever the module's pause, and the descriptor leaves epoll. The
// connection closes once the module has consumed what it was shown; input
// it left (a proxy whose other side is slow, say) is shown again when it
// resumes reading. Nothing the peer sent is dropped.
func (c *conn) hungUp() {
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
	c.events = 0
}

// redeliver queues the connection to show its module the input it kept,
// once the current event is done: after a pause ends, no new bytes may
// ever come to trigger a read.
func (c *conn) redeliver() {
	if c.flags&flagRedeliver != 0 || len(c.kept()) == 0 || c.closed {
		return
	}
	c.flags |= flagRedeliver
	c.loop.redeliver = append(c.loop.redeliver, c)
}

// deliverKept shows the module its kept input again, if it reads now.
func (c *conn) deliverKept() {
	c.flags &^= flagRedeliver
	if c.closed || c.flags&(flagPaused|flagWatermark|flagClosing) != 0 || len(c.kept()) == 0 {
		return
	}
	c.deliver(nil)
	if !c.closed && c.flags&flagHungUp != 0 && (len(c.kept()) == 0 || c.flags&flagClosing != 0) {
		c.closeNow(api.ReasonClient, nil)
		return
	}
	c.closeIfSpent()
}

// closeIfSpent closes a connection whose writes failed after its module
// was shown end-of-file, once the module has consumed the rest: nothing
// can go either way any more.
func (c *conn) closeIfSpent() {
	if !c.closed && c.flags&(flagWriteFailed|flagInputClosed) == flagWriteFailed|flagInputClosed && len(c.kept()) == 0 {
		c.closeNow(api.ReasonError, errWriteFailed)
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
	c.flags &^= flagWatermark | flagWantWritable
	c.dropOutput()
	c.redeliver()
	c.closeIfSpent()
	if !c.closed && c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// readOnce reports whether the read returned bytes or EOF (as opposed to
// nothing yet or an error).
func (c *conn) readOnce() bool {
	if c.x != nil && c.x.tls != nil {
		return c.tlsReadOnce()
	}
	n, err := rawRead(int(c.fd), c.loop.buf)
	switch {
	case n > 0:
		c.lis.stats[c.loop.index].bytesIn.Add(uint64(n))
		c.touch()
		c.deliver(c.loop.buf[:n])
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
		c.updateEvents()
		return true
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	default:
		c.closeNow(api.ReasonError, err)
		return false
	}
}

// deliver shows the module its unconsumed input followed by fresh bytes,
// then keeps what it left. While OnReadable runs, the loop's reader, cur
// and consumed say what Inbound shows (the loop's buffer or in) and what
// the module has taken of it; they are saved and restored around the
// callback, so that a delivery nested in another's callback leaves the
// outer one's intact.
func (c *conn) deliver(fresh []byte) {
	l := c.loop
	cur := fresh
	if c.in != nil && len(*c.in) > 0 {
		*c.in = append(*c.in, fresh...)
		cur = *c.in
	}
	reader, outerCur, outerConsumed := l.reader, l.cur, l.consumed
	l.reader, l.cur, l.consumed = c, cur, 0
	c.callback(c.handler().OnReadable)
	cur, consumed := l.cur, l.consumed
	l.reader, l.cur, l.consumed = reader, outerCur, outerConsumed
	if c.closed {
		return
	}
	rest := cur[consumed:]
	switch {
	case len(rest) == 0:
		if c.in != nil {
			if cap(*c.in) > 4096 {
				*c.in = nil // do not let one long line pin memory for good
			} else {
				*c.in = (*c.in)[:0]
			}
		}
	case c.in == nil || len(*c.in) == 0:
		if c.in == nil {
			c.in = new([]byte)
		}
		*c.in = append(*c.in, rest...)
	default:
		*c.in = (*c.in)[:copy(*c.in, rest)]
	}
	if len(c.kept()) > c.lis.spec.MaxInput {
		c.lis.log.Warn("input bound exceeded; connection closed", "remote", c.remoteString(), "limit", c.lis.spec.MaxInput)
		c.closeNow(api.ReasonError, fmt.Errorf("more than %d bytes of unconsumed input", c.lis.spec.MaxInput))
	}
}

// callback runs a module method with the in-callback bit set, so that
// state changes made inside it are applied once, after it returns.
func (c *conn) callback(f func(api.Conn)) {
	c.flags |= flagInCallback
	f(c)
	c.flags &^= flagInCallback
	c.updateEvents()
}

// handleWritable flushes queued output and tells the module when it may
// write more.
func (c *conn) handleWritable() {
	if c.buffered() > 0 {
		if !c.flush() {
			return
		}
	}
	if c.buffered() > 0 {
		c.updateEvents()
		return
	}
	if c.flags&flagClosing != 0 {
		c.finishClose()
		return
	}
	if c.flags&flagCloseWrite != 0 && c.flags&flagWriteShut == 0 {
		c.shutWrite()
	}
	if c.flags&(flagDrained|flagWantWritable) != 0 {
		c.flags &^= flagDrained
		c.callback(c.handler().OnWritable)
		return
	}
	c.updateEvents()
}

// flush writes queued output with writev. It reports false when the
// connection was closed by an error.
func (c *conn) flush() bool {
	for c.out != nil && c.out.n > 0 {
		c.loop.views = c.out.views(c.loop.views[:0])
		n, err := c.loop.writev(int(c.fd), c.loop.views)
		if err != nil {
			if err == unix.EAGAIN {
				break
			}
			c.writeFailed(err)
			return !c.closed
		}
		c.lis.stats[c.loop.index].bytesOut.Add(uint64(n))
		c.out.advance(n, &c.loop.pool)
		c.touchOutput()
		if n == 0 {
			break
		}
	}
	if c.out != nil && c.out.n == 0 {
		c.dropOutput()
	}
	if c.flags&flagWatermark != 0 && c.buffered() <= c.lis.spec.LowWatermark {
		c.flags &^= flagWatermark
		c.redeliver()
	}
	if c.buffered() == 0 {
		c.flags |= flagDrained
	}
	return true
}

// Inbound implements api.Conn. Inside OnReadable it shows the loop's
// buffer without a copy; in any other callback, the input kept so far.
func (c *conn) Inbound() []byte {
	if l := c.loop; l.reader == c {
		return l.cur[l.consumed:]
	}
	return c.kept()
}

// Consume implements api.Conn.
func (c *conn) Consume(n int) {
	l := c.loop
	if l.reader != c {
		if c.in != nil {
			in := *c.in
			n = min(max(n, 0), len(in))
			*c.in = in[:copy(in, in[n:])]
		}
		return
	}
	if n < 0 || l.consumed+n > len(l.cur) {
		n = len(l.cur) - l.consumed
	}
	l.consumed += n
}

// InputClosed implements api.Conn.
func (c *conn) InputClosed() bool { return c.flags&flagInputClosed != 0 }

// Write implements api.Conn: straight to the kernel when nothing is
// queued, and only the rest is copied.
func (c *conn) Write(p []byte) (int, error) {
	if c.closed || c.flags&(flagClosing|flagCloseWrite|flagWriteShut) != 0 {
		return 0, api.ErrClosed
	}
	if c.x != nil && c.x.tls != nil {
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
			c.lis.stats[c.loop.index].bytesOut.Add(uint64(n))
			p = p[n:]
			c.touchOutput()
		}
	}
	if len(p) > 0 {
		c.queue(p)
		if c.out.n > c.lis.spec.HighWatermark && c.flags&flagWatermark == 0 {
			c.flags |= flagWatermark
			c.lis.stats[c.loop.index].readsPaused.Add(1)
		}
		if c.flags&flagInCallback == 0 {
			c.updateEvents()
		}
	}
	return total, nil
}

// Buffered implements api.Conn.
func (c *conn) Buffered() int { return c.buffered() }

// WantWritable implements api.Conn.
func (c *conn) WantWritable(on bool) {
	if on {
		c.flags |= flagWantWritable
	} else {
		c.flags &^= flagWantWritable
	}
	if c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// PauseReading implements api.Conn.
func (c *conn) PauseReading() {
	c.flags |= flagPaused
	if c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// ResumeReading implements api.Conn.
func (c *conn) ResumeReading() {
	c.flags &^= flagPaused
	c.redeliver()
	if c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// CloseWrite implements api.Conn.
func (c *conn) CloseWrite() error {
	if c.closed || c.flags&flagClosing != 0 {
		return api.ErrClosed
	}
	c.flags |= flagCloseWrite
	if c.buffered() == 0 {
		c.shutWrite()
	}
	return nil
}

func (c *conn) shutWrite() {
	if c.flags&flagWriteShut != 0 {
		return
	}
	if c.x != nil && c.x.tls != nil && c.tlsCloseNotify() {
		return // close_notify is queued: shutWrite runs again once it is flushed
	}
	c.flags |= flagWriteShut
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
		c.closeNow(api.ReasonError, err)
	}
}

// Close implements api.Conn.
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
// peer's EOF, close.
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
	c.extra().closing = closeState{reason: reason, err: err, since: c.loop.now.UnixNano()}
	c.flags &^= flagPaused | flagWatermark | flagWantWritable
	c.setList(&c.loop.lingering)
	if c.buffered() == 0 && c.flags&flagConnecting == 0 {
		c.finishClose()
		return
	}
	if c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// finishClose runs once output is flushed: close at once when the peer has
// finished sending, else half-close and linger for its EOF.
func (c *conn) finishClose() {
	if c.x.tls != nil && c.tlsCloseNotify() {
		return // close_notify is queued: finishClose runs again once it is flushed
	}
	if c.flags&flagInputClosed != 0 {
		c.closeNow(c.x.closing.reason, c.x.closing.err)
		return
	}
	c.shutWrite()
	if !c.closed && c.flags&flagInCallback == 0 {
		c.updateEvents()
	}
}

// discardInput reads and drops input while lingering; EOF ends the linger.
func (c *conn) discardInput() {
	n, err := rawRead(int(c.fd), c.loop.buf)
	switch {
	case n > 0:
		c.lis.stats[c.loop.index].bytesIn.Add(uint64(n))
		// Past LingerTimeout this renews nothing: a peer that keeps
		// sending cannot hold the close open.
		c.touch()
	case n == 0 && err == nil:
		c.flags |= flagInputClosed
		if c.buffered() == 0 {
			c.closeNow(c.x.closing.reason, c.x.closing.err)
		} else {
			c.updateEvents()
		}
	case err == unix.EAGAIN || err == unix.EINTR:
	default:
		c.closeNow(c.x.closing.reason, c.x.closing.err)
	}
}

// Abort implements api.Conn. A zero linger makes the close send a TCP
// reset, so that the peer cannot take an aborted exchange for a complete
// one; a unix socket's peer sees ECONNRESET on its next read anyway, or
// end-of-file when nothing was in flight.
func (c *conn) Abort(reason api.Reason, err error) {
	if c.closed {
		return
	}
	// TCP only: a unix socket or a pipe has no reset to send.
	if c.rfamily != 0 && c.flags&flagConnecting == 0 {
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
	// under the number the next accept reuses.
	if c.flags&flagHungUp == 0 {
		c.loop.removeFD(int(c.fd))
	} else {
		c.loop.fds[c.fd] = nil
	}
	if c.x != nil && c.x.tls != nil {
		c.tlsRelease()
	}
	_ = unix.Close(int(c.fd))
	c.dropOutput()
	c.in = nil
	if l := c.loop; l.reader == c {
		l.cur, l.consumed = nil, 0
	}
	c.setList(nil)
	if c.flags&flagOutbound != 0 {
		c.lis.engine.outbound.Add(-1)
	} else {
		c.lis.stats[c.loop.index].closed(reason)
		c.lis.active.Add(-1)
		c.lis.engine.active.Add(-1)
		c.loop.served.Add(-1)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.lis.log.Error("module panicked in OnClose", "panic", fmt.Sprint(r))
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

// touch records activity: it restarts the idle timeout, or, while
// closing, the quiet period the linger waits for. Past LingerTimeout a
// closing connection's activity no longer counts, so a peer that reads a
// trickle, or keeps sending, cannot hold the close open for good.
func (c *conn) touch() {
	if c.list == nil {
		return
	}
	now := c.loop.now.UnixNano()
	if c.flags&flagClosing != 0 && now-c.x.closing.since > int64(c.loop.engine.cfg.LingerTimeout) {
		return
	}
	c.last = now
	c.list.moveToBack(c)
}

// touchOutput records output progress: activity for the idle timeout and
// the linger, not for a drain (see drain).
func (c *conn) touchOutput() {
	if c.list != &c.loop.draining {
		c.touch()
	}
}

// setList moves the connection to list (nil: none).
func (c *conn) setList(list *connList) {
	if c.list == list {
		return
	}
	if c.list != nil {
		c.list.remove(c)
	}
	if list != nil {
		c.last = c.loop.now.UnixNano()
		list.pushBack(c)
	}
}

func (c *conn) deadline(timeout time.Duration) time.Time {
	return time.Unix(0, c.last+int64(timeout))
}

// Listener implements api.Conn.
func (c *conn) Listener() string { return c.lis.spec.Name }

// LocalAddr implements api.Conn.
func (c *conn) LocalAddr() net.Addr {
	if c.closed {
		return nil
	}
	sa, err := unix.Getsockname(int(c.fd))
	if err != nil {
		return nil
	}
	return sockaddrToNet(sa)
}

// RemoteAddr implements api.Conn.
func (c *conn) RemoteAddr() net.Addr {
	if c.rfamily == 0 {
		return &net.UnixAddr{Net: "unix"}
	}
	return net.TCPAddrFromAddrPort(c.remote())
}

func (c *conn) remoteString() string {
	if c.rfamily == 0 {
		return "unix"
	}
	return c.remote().String()
}

// Context implements api.Conn.
func (c *conn) Context() any { return c.ctx }

// SetContext implements api.Conn.
func (c *conn) SetContext(v any) { c.ctx = v }

// Loop implements api.Conn.
func (c *conn) Loop() api.Loop { return c.lis.views[c.loop.index] }

func sockaddrToNet(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}
