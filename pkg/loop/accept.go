package loop

import (
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// Accept backoff after running out of descriptors or memory: as net/http,
// from 5 ms doubling to 1 s.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
	// acceptBatch bounds the connections accepted per wake-up, so that a
	// flood of connects cannot starve the connections already open.
	acceptBatch = 64
)

// acceptEvents is what every loop registers a stream listener for: one
// loop woken per incoming connection, not all of them.
const acceptEvents = unix.EPOLLIN | unix.EPOLLEXCLUSIVE

// acceptor is one loop's registration of a stream listener.
type acceptor struct {
	lis      *Listener
	loop     *eventLoop
	backoff  time.Duration // current backoff; 0 when accepting normally
	resumeAt time.Time     // when a paused acceptor accepts again
	paused   bool          // out of epoll until resumeAt (see pause)
}

// handleEvent accepts up to acceptBatch connections, and fewer when the
// loop gives way to a less busy one (see giveWay).
func (a *acceptor) handleEvent(uint32) {
	for i := 0; i < acceptBatch; i++ {
		fd, err := a.accept()
		if err != nil {
			switch err {
			case unix.EAGAIN:
				a.backoff = 0
				return
			case unix.EINTR, unix.ECONNABORTED, unix.EPERM, unix.EPROTO:
				// The connection died in the queue or a firewall said no:
				// that one is gone, the listener is fine.
				continue
			default:
				// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
				// ENOMEM), or worse: back off rather than spin.
				a.pause(err)
				return
			}
		}
		a.backoff = 0
		a.admit(fd)
		if a.giveWay() {
			// Leave the rest of a burst to the loops now ahead in the
			// queue: level-triggered, the listener is reported again to
			// whichever loop comes next.
			return
		}
	}
}

// giveWay moves this loop's registration of the listener to the back of
// the socket's wait queue when the loop serves more connections than the
// least busy loop, and reports whether it did. The kernel wakes the first
// loop waiting in that queue (one EPOLLEXCLUSIVE registration per loop),
// so without this the loop that happens to be first takes nearly every
// connection; with it, the next connection goes to a less busy loop if
// one is waiting. It costs two system calls, only while the loops are
// unbalanced, and disturbs no other loop.
func (a *acceptor) giveWay() bool {
	l := a.loop
	if len(l.engine.loops) == 1 || a.paused || a.lis.closed.Load() {
		return false
	}
	if l.served.Load() <= l.fewestServed()+1 {
		return false
	}
	if err := l.requeue(a.lis.fd, acceptEvents); err != nil {
		a.pause(err) // out of epoll already; the backoff puts it back
	}
	return true
}

// fewestServed returns the fewest connections any loop serves.
func (l *eventLoop) fewestServed() int64 {
	fewest := l.served.Load()
	for _, o := range l.engine.loops {
		fewest = min(fewest, o.served.Load())
	}
	return fewest
}

// accept is accept4(2) into the loop's address buffer: x/sys's Accept4
// allocates its own, and the Sockaddr it returns, on every call (the
// EAGAIN that ends a batch included).
func (a *acceptor) accept() (int, error) {
	l := a.loop
	l.acceptAddrLen = unix.SizeofSockaddrAny
	r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(a.lis.fd),
		uintptr(unsafe.Pointer(&l.acceptAddr)), uintptr(unsafe.Pointer(&l.acceptAddrLen)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// acceptedPeer decodes the address accept left in the loop's buffer; ok
// is false for a unix socket's peer (or an unknown family).
func (l *eventLoop) acceptedPeer() (ap netip.AddrPort, ok bool) {
	switch l.acceptAddr.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&l.acceptAddr))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), uint16(port[0])<<8|uint16(port[1])), true
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&l.acceptAddr))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), uint16(port[0])<<8|uint16(port[1])), true
	}
	return netip.AddrPort{}, false
}

// admit turns an accepted descriptor into a connection, or closes it at
// once when a connection limit is reached. The peer's address is in the
// loop's accept buffer.
func (a *acceptor) admit(fd int) {
	l, lis, e := a.loop, a.lis, a.lis.engine
	stats := &lis.stats[l.index]
	stats.accepted.Add(1)
	n := lis.active.Add(1)
	total := e.active.Add(1)
	if (lis.spec.MaxConnections > 0 && n > int64(lis.spec.MaxConnections)) ||
		(e.cfg.MaxConnections > 0 && total > int64(e.cfg.MaxConnections)) {
		lis.active.Add(-1)
		e.active.Add(-1)
		stats.closed(api.ReasonOverLimit)
		_ = unix.Close(fd)
		if lis.overLimitLog.Allow(l.now) {
			peer, _ := l.acceptedPeer()
			lis.log.Warn("connection limit reached; closing new connections", "remote", peer.String(), "listener_limit", lis.spec.MaxConnections, "total_limit", e.cfg.MaxConnections)
		}
		return
	}
	peer, isIP := l.acceptedPeer()
	wait := false
	if ed := lis.edge; ed != nil && isIP {
		var r api.Reason
		if wait, r = ed.accept(l, peer.Addr()); r != "" {
			lis.active.Add(-1)
			e.active.Add(-1)
			stats.closed(r) // counted as refused
			_ = unix.Close(fd)
			ed.refused(lis, l.now, peer, r)
			return
		}
	}
	l.served.Add(1)
	a.serve(fd, peer, isIP, wait)
}

// serve registers an admitted connection and shows it to the module, or,
// with wait, waits for its PROXY protocol header first (edge.go).
func (a *acceptor) serve(fd int, peer netip.AddrPort, isIP, wait bool) {
	l, lis := a.loop, a.lis
	c := newConn(l, lis, nil, fd)
	if isIP {
		c.setRemote(peer)
		// Echo-style request/response traffic must not wait for Nagle.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := l.add(fd, c, unix.EPOLLIN); err != nil {
		lis.active.Add(-1)
		lis.engine.active.Add(-1)
		l.served.Add(-1)
		lis.stats[l.index].closed(api.ReasonError)
		_ = unix.Close(fd)
		lis.engine.checkDrained()
		return
	}
	c.interest = unix.EPOLLIN
	if lis.spec.IdleTimeout > 0 {
		c.setList(l.idleList(lis.spec.IdleTimeout))
	}
	if lis.edge != nil && c.edgeAccept(wait, !wait) {
		return // the module is told once the header is in
	}
	// A module that panics in OnAccept loses this connection, not the
	// loop: the acceptor's guard knows no connection.
	defer func() {
		if r := recover(); r != nil {
			l.recovered(c, r)
		}
	}()
	if lis.spec.TLS != nil {
		c.tlsAccept() // the module sees the connection once its handshake is done
		return
	}
	c.callback(lis.stream.OnAccept)
	if lis.engine.draining.Load() && !c.closed {
		// Shutdown began while this one waited in the backlog (or, in an
		// upgrade, the new process shares the socket): serve it until it
		// is quiet, like every other connection.
		c.drain()
	}
}

// pause stops accepting on this loop for a backoff delay. The listener is
// taken out of epoll: level-triggered, it would otherwise wake the loop
// again at once and spin.
func (a *acceptor) pause(err error) {
	stats := &a.lis.stats[a.loop.index]
	stats.acceptErrors.Add(1)
	if a.backoff == 0 {
		a.backoff = minAcceptBackoff
	} else if a.backoff *= 2; a.backoff > maxAcceptBackoff {
		a.backoff = maxAcceptBackoff
	}
	if a.lis.acceptErrLog.Allow(a.loop.now) {
		a.lis.log.Warn("accept failed; pausing this listener", "error", err, "retry_in", a.backoff)
	}
	if a.paused || a.lis.closed.Load() {
		return
	}
	a.paused = true
	a.resumeAt = a.loop.now.Add(a.backoff)
	a.loop.removeFD(a.lis.fd)
	a.loop.pausedAcceptors = append(a.loop.pausedAcceptors, a)
}

// resume puts the listener back into epoll after a backoff.
func (a *acceptor) resume() {
	a.paused = false
	if a.lis.closed.Load() {
		return
	}
	if err := a.loop.add(a.lis.fd, a, acceptEvents); err != nil {
		a.lis.log.Error("cannot resume accepting", "error", err)
	}
}
