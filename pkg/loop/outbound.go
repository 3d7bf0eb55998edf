package loop

import (
	"errors"
	"fmt"

	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// loopView is one loop as the module of one listener sees it: connections
// it dials or attaches belong to that listener's logs and drain.
type loopView struct {
	*eventLoop
	lis *Listener
}

var _ api.Loop = (*loopView)(nil)

// Dial implements api.Loop. Loop only.
func (v *loopView) Dial(network, address string, timeout time.Duration, h api.StreamHandler) (api.Conn, error) {
	if h == nil {
		return nil, errors.New("netd: Dial with a nil handler")
	}
	var sa unix.Sockaddr
	domain := unix.AF_UNIX
	switch network {
	case "unix":
		sa = &unix.SockaddrUnix{Name: address}
	case "tcp", "tcp4", "tcp6":
		var err error
		if domain, sa, err = inetSockaddr(network, address, true); err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
	default:
		return nil, fmt.Errorf("dial: unsupported network %q", network)
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: socket: %w", network, address, err)
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dial %s %s: %w", network, address, err)
	}
	if domain != unix.AF_UNIX {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c := newConn(v.eventLoop, v.lis, h, fd)
	if ap, ok := sockaddrToAddrPort(sa); ok {
		c.setRemote(ap)
	}
	c.flags |= flagOutbound | flagConnecting
	if err := v.add(fd, c, unix.EPOLLOUT); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	c.interest = unix.EPOLLOUT
	v.lis.engine.outbound.Add(1)
	if timeout > 0 {
		c.setList(v.timeoutList(timeout, api.ReasonError, api.ErrConnectTimeout))
	}
	return c, nil
}

// connected finishes a Dial once epoll reports the socket writable (or
// failed).
func (c *conn) connected() {
	soerr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		c.closeNow(api.ReasonError, fmt.Errorf("connect: %w", err))
		return
	}
	c.flags &^= flagConnecting
	if c.flags&flagClosing != 0 {
		// Closed while connecting, with output queued: deliver it, then
		// close; the module said goodbye already, so no OnAccept.
		c.handleWritable()
		return
	}
	c.setList(nil)
	if c.lis.spec.IdleTimeout > 0 {
		c.setList(c.loop.idleList(c.lis.spec.IdleTimeout))
	}
	c.callback(c.handler().OnAccept)
	if !c.closed && c.buffered() > 0 {
		c.handleWritable()
	}
}

// Attach implements api.Loop. Loop only.
func (v *loopView) Attach(fd int, h api.StreamHandler) (api.Conn, error) {
	if h == nil {
		return nil, errors.New("netd: Attach with a nil handler")
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		return nil, fmt.Errorf("attach fd %d: not a stream socket", fd)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("attach fd %d: %w", fd, err)
	}
	c := newConn(v.eventLoop, v.lis, h, fd)
	if remote, err := unix.Getpeername(fd); err == nil {
		if ap, ok := sockaddrToAddrPort(remote); ok {
			c.setRemote(ap)
		}
	}
	c.flags |= flagOutbound
	if err := v.add(fd, c, unix.EPOLLIN); err != nil {
		return nil, err
	}
	c.interest = unix.EPOLLIN
	v.lis.engine.outbound.Add(1)
	if v.lis.spec.IdleTimeout > 0 {
		c.setList(v.idleList(v.lis.spec.IdleTimeout))
	}
	c.callback(h.OnAccept)
	return c, nil
}

// watcher calls a function when its descriptor is readable.
type watcher struct {
	f func()
}

func (w *watcher) handleEvent(uint32) { w.f() }

// Watch implements api.Loop. Loop only.
func (v *loopView) Watch(fd int, f func()) (func(), error) {
	if f == nil {
		return nil, errors.New("netd: Watch with a nil func")
	}
	w := &watcher{f: f}
	if err := v.add(fd, w, unix.EPOLLIN); err != nil {
		return nil, err
	}
	l := v.eventLoop
	return func() {
		if l.handlerOf(fd) == fdHandler(w) {
			l.removeFD(fd)
		}
	}, nil
}
