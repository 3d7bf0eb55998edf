package loop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// A connection's code is split by concern: this file has the type, its
// interest set and the event dispatch; conn_read.go reading and delivery
// to the module, conn_write.go the output queue, watermarks and write
// failures, conn_close.go graceful close, linger, abort and drain, and
// list.go its place in the timeout lists.

// Connection state bits (conn.flags). The interest set registered with
// epoll is computed from them (wantInterest).
const (
	flagInputClosed       uint16 = 1 << iota // read EOF, or the peer hung up
	flagPausedByModule                       // the module paused reading (PauseReading)
	flagPausedByWatermark                    // the loop paused reading: output above the high watermark
	flagWantWritable                         // the module wants OnWritable while the socket takes output
	flagClosing                              // graceful close in progress: flushing, then lingering
	flagShutWritePending                     // CloseWrite asked: half-close once output is flushed
	flagWriteShut                            // shutdown(SHUT_WR) done, or writes failed
	flagInCallback                           // a module callback is running: interest is updated after it
	flagOnWritableOwed                       // queued output has drained: OnWritable is owed
	flagConnecting                           // a Dial in progress
	flagOutbound                             // dialed or attached, not accepted: outside the listener's limits
	flagRedeliverQueued                      // in the loop's redeliverQueue, to show the module its kept input again
	flagHungUp                               // the peer is gone both ways: out of epoll, finishing kept input
	flagWriteFailed                          // a write failed (EPIPE, ECONNRESET): output is dropped, input is still read
)

// conn is one stream connection. Only its loop touches it.
//
// An idle connection costs what this struct costs, so what only some
// connections need lives behind pointers that stay nil for most: kept
// input, queued output, and the rest (connExtra). What Inbound shows
// during OnReadable is the loop's (eventLoop.inbound), since one
// OnReadable runs at a time per loop. The struct stays within the 128-byte
// size class; TestConnSize holds it there.
type conn struct {
	loop *eventLoop
	lis  *Listener

	// keptInput holds input the module left unconsumed between reads; nil
	// until a read first leaves some.
	keptInput *[]byte
	// out is output the kernel has not taken yet; nil while there is none.
	// The loop recycles the queues.
	out *outQueue
	// extra is what few connections need: a dialed or attached
	// connection's handler, a graceful close's state. nil until then.
	extra *connExtra
	ctx   any // the module's value (api.Conn's Context and SetContext)

	// Links in one of the loop's timeout lists (list; see connList), and
	// the time of the last activity, in the loop clock's Unix nanoseconds.
	prev, next *conn
	list       *connList
	lastActive int64

	fd       int32
	interest uint32 // the interest set registered with epoll
	gen      uint32 // the loop's number for that registration (eventLoop.gen)
	flags    uint16 // flag* bits
	closed   bool   // closeNow has run: the descriptor is closed, OnClose called

	// The peer's address, compact: remoteFamily is 4 or 6 (remoteIP[:4]
	// or remoteIP holds the address), 0 for a unix socket.
	remoteFamily uint8
	remotePort   uint16
	remoteIP     [16]byte
}

// connExtra is the state few connections need.
type connExtra struct {
	// handler serves a dialed or attached connection; nil for an accepted
	// one, which its listener's module serves.
	handler api.StreamHandler
	// closing is what a graceful close (flagClosing) remembers until the
	// descriptor is closed.
	closing closeState
	// tls is the TLS layer of a connection on a TLS listener (tls.go).
	tls *tlsState
	// edge is the PROXY header phase, the access count and the access
	// log's figures, on a listener that has them (edge.go).
	edge *connEdge
}

// closeState is what a graceful close remembers until the descriptor is
// closed: what OnClose will be told, and when the close began (which
// bounds the linger, see touch).
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
		c.extra = &connExtra{handler: h}
	}
	return c
}

// handler returns the connection's module.
func (c *conn) handler() api.StreamHandler {
	if c.extra != nil && c.extra.handler != nil {
		return c.extra.handler
	}
	return c.lis.stream
}

// ensureExtra returns the connection's connExtra, making it on first use.
func (c *conn) ensureExtra() *connExtra {
	if c.extra == nil {
		c.extra = new(connExtra)
	}
	return c.extra
}

// setRemote records the peer's address; an invalid one (a unix socket's
// peer) records none.
func (c *conn) setRemote(ap netip.AddrPort) {
	a := ap.Addr()
	switch {
	case a.Is4():
		c.remoteFamily = 4
		a4 := a.As4()
		copy(c.remoteIP[:], a4[:])
	case a.Is6():
		c.remoteFamily = 6
		c.remoteIP = a.As16()
	default:
		c.remoteFamily = 0
		return
	}
	c.remotePort = ap.Port()
}

// remote returns the peer's address; zero for unix sockets.
func (c *conn) remote() netip.AddrPort {
	switch c.remoteFamily {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.remoteIP[:4])), c.remotePort)
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom16(c.remoteIP), c.remotePort)
	}
	return netip.AddrPort{}
}

// wantInterest computes the interest set from the state bits.
func (c *conn) wantInterest() uint32 {
	if c.flags&flagConnecting != 0 {
		return unix.EPOLLOUT
	}
	var ev uint32
	if c.flags&(flagInputClosed|flagPausedByModule|flagPausedByWatermark) == 0 {
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

// updateInterest brings epoll's interest set in line with the state.
func (c *conn) updateInterest() {
	if c.closed || c.flags&flagHungUp != 0 {
		return
	}
	if want := c.wantInterest(); want != c.interest {
		if err := c.loop.modify(int(c.fd), want); err != nil {
			c.closeNow(api.ReasonError, fmt.Errorf("epoll_ctl: %w", err))
			return
		}
		c.interest = want
	}
}

// handleEvent dispatches one epoll event: a Dial completing, a socket
// error, then output, input and hang-up in that order, each only while
// the connection is still open.
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
		c.updateInterest()
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
			c.readOnce()
		}
	}
	if c.closed {
		return
	}
	if events&unix.EPOLLHUP != 0 {
		c.hungUp()
	}
}

// callback runs a module method with the in-callback bit set, so that
// state changes made inside it are applied once, after it returns.
func (c *conn) callback(f func(api.Conn)) {
	c.flags |= flagInCallback
	f(c)
	c.flags &^= flagInCallback
	c.updateInterest()
}

// Listener implements api.Conn. Loop only.
func (c *conn) Listener() string { return c.lis.spec.Name }

// LocalAddr implements api.Conn. Loop only.
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

// RemoteAddr implements api.Conn. Loop only.
func (c *conn) RemoteAddr() net.Addr {
	if c.remoteFamily == 0 {
		return &net.UnixAddr{Net: "unix"}
	}
	return net.TCPAddrFromAddrPort(c.remote())
}

// remoteString returns the peer's address for logs; it allocates.
func (c *conn) remoteString() string {
	if c.remoteFamily == 0 {
		return "unix"
	}
	return c.remote().String()
}

// Context implements api.Conn. Loop only.
func (c *conn) Context() any { return c.ctx }

// SetContext implements api.Conn. Loop only.
func (c *conn) SetContext(v any) { c.ctx = v }

// Loop implements api.Conn. Loop only.
func (c *conn) Loop() api.Loop { return c.lis.views[c.loop.index] }

// sockaddrToNet converts an address from x/sys to the net package's.
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
