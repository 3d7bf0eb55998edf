package loop

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// Datagram socket bounds: datagrams read per wake-up (fairness), and the
// queue of replies the kernel would not take yet. Past the queue's bounds
// a reply is dropped at the door: a flood costs bounded memory.
const (
	packetBatch       = 64
	maxQueuedPackets  = 1024
	maxQueuedPktBytes = 4 << 20
)

// queuedPacket is a reply the kernel would not take yet: a copy of the
// datagram and its destination.
type queuedPacket struct {
	data []byte
	to   unix.Sockaddr
}

// packetSocket is a udp listener's socket, served by one loop. It is the
// api.PacketWriter its module writes through.
type packetSocket struct {
	lis      *Listener
	loop     *eventLoop
	queue    []queuedPacket
	queued   int    // bytes in queue
	interest uint32 // the interest set registered with epoll
	v6       bool   // the socket is AF_INET6
	// ampGuard: answers to non-loopback sources may not outgrow their
	// request (EdgeSpec.AllowAmplification unset); dl is the datagram
	// being delivered (edge_packet.go).
	ampGuard bool
	dl       delivery
}

var _ api.PacketWriter = (*packetSocket)(nil)

// newPacketSocket makes the socket of lis, served by loop l.
func newPacketSocket(lis *Listener, l *eventLoop) *packetSocket {
	p := &packetSocket{lis: lis, loop: l, interest: unix.EPOLLIN,
		ampGuard: lis.spec.Edge == nil || !lis.spec.Edge.AllowAmplification}
	if sa, err := unix.Getsockname(lis.fd); err == nil {
		_, p.v6 = sa.(*unix.SockaddrInet6)
	}
	return p
}

// handleEvent sends queued replies when the socket takes output, then
// reads up to packetBatch datagrams and hands each to the module.
func (p *packetSocket) handleEvent(events uint32) {
	if events&unix.EPOLLOUT != 0 {
		p.flush()
	}
	if events&unix.EPOLLIN == 0 {
		return
	}
	stats := &p.lis.stats[p.loop.index]
	for i := 0; i < packetBatch; i++ {
		n, from, err := unix.Recvfrom(p.lis.fd, p.loop.readBuf, unix.MSG_TRUNC)
		if err != nil {
			return // EAGAIN, or an ICMP error from an earlier send: nothing to read
		}
		if n > len(p.loop.readBuf) {
			// Truncated: a reply would not be the datagram as sent.
			stats.dropped.Add(1)
			continue
		}
		stats.datagramsIn.Add(1)
		stats.bytesIn.Add(uint64(n))
		ap, ok := sockaddrToAddrPort(from)
		if !ok {
			continue
		}
		data, client := p.loop.readBuf[:n], ap
		if p.lis.edge != nil {
			if data, client, ok = p.edgeDatagram(data, ap); !ok {
				continue
			}
		}
		p.deliver(data, client, ap)
	}
}

// deliver hands one datagram from client, which came from peer, to the
// module, so that its panic loses only that datagram.
func (p *packetSocket) deliver(data []byte, client, peer netip.AddrPort) {
	defer func() {
		p.dl.active = false
		if r := recover(); r != nil {
			if p.lis.panicLog.Allow(p.loop.now) {
				p.lis.log.Error("module panicked on a datagram", "remote", client.String(), "panic", r)
			}
		}
	}()
	p.dl.begin(client, peer, len(data), p.ampGuard)
	p.lis.packet.OnPacket(p, data, client)
}

// WriteTo implements api.PacketWriter. Loop only.
func (p *packetSocket) WriteTo(b []byte, to netip.AddrPort) error {
	if p.lis.closed.Load() {
		return api.ErrClosed
	}
	stats := &p.lis.stats[p.loop.index]
	to, ok := p.dl.route(to, len(b))
	if !ok {
		stats.dropped.Add(1)
		return errAmplification
	}
	sa := addrPortToSockaddr(to, p.v6)
	if len(p.queue) == 0 {
		err := unix.Sendto(p.lis.fd, b, 0, sa)
		if err == nil {
			stats.datagramsOut.Add(1)
			stats.bytesOut.Add(uint64(len(b)))
			return nil
		}
		if err != unix.EAGAIN && err != unix.ENOBUFS {
			return err
		}
	}
	if len(p.queue) >= maxQueuedPackets || p.queued+len(b) > maxQueuedPktBytes {
		stats.dropped.Add(1)
		return api.ErrQueueFull
	}
	p.queue = append(p.queue, queuedPacket{data: append([]byte(nil), b...), to: sa})
	p.queued += len(b)
	p.setInterest(unix.EPOLLIN | unix.EPOLLOUT)
	return nil
}

// Listener implements api.PacketWriter. Loop only.
func (p *packetSocket) Listener() string { return p.lis.spec.Name }

// flush sends queued replies in order until the kernel takes no more; a
// reply that fails for another reason is dropped.
func (p *packetSocket) flush() {
	stats := &p.lis.stats[p.loop.index]
	sent := 0
	for _, q := range p.queue {
		err := unix.Sendto(p.lis.fd, q.data, 0, q.to)
		if err == unix.EAGAIN || err == unix.ENOBUFS {
			break
		}
		sent++
		p.queued -= len(q.data)
		if err == nil {
			stats.datagramsOut.Add(1)
			stats.bytesOut.Add(uint64(len(q.data)))
		}
	}
	k := copy(p.queue, p.queue[sent:])
	clear(p.queue[k:])
	p.queue = p.queue[:k]
	if len(p.queue) == 0 {
		p.setInterest(unix.EPOLLIN)
	}
}

// setInterest registers the socket for ev, unless the listener is closed.
func (p *packetSocket) setInterest(ev uint32) {
	if ev != p.interest && !p.lis.closed.Load() {
		if p.loop.modify(p.lis.fd, ev) == nil {
			p.interest = ev
		}
	}
}

// sockaddrToAddrPort converts an IPv4 or IPv6 address from x/sys; ok is
// false for any other family.
func sockaddrToAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}

// addrPortToSockaddr builds a destination in the socket's own family: a
// dual-stack IPv6 socket reaches IPv4 peers through mapped addresses.
func addrPortToSockaddr(ap netip.AddrPort, v6socket bool) unix.Sockaddr {
	if ap.Addr().Is4() && !v6socket {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
