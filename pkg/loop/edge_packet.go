package loop

import (
	"net/netip"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/pkg/modules/api"
)

// The edge of a udp listener works per datagram: a PROXY protocol header
// in each (never only the first), the access lists and a per-source token
// bucket, then the amplification guard on the answers.

// delivery is what a packetSocket knows of the datagram its module is
// being shown, for WriteTo: who the module was told sent it, where an
// answer to that address really goes, and how many bytes may answer it.
type delivery struct {
	active bool
	shown  netip.AddrPort // the from the module was given
	peer   netip.AddrPort // the socket's peer: the proxy, when a header named another client
	// limited is set when the answer to shown may not outgrow the request:
	// budget is what is left of it.
	limited bool
	budget  int
}

// edgeDatagram applies the listener's edge to one datagram from peer: it
// returns the payload and the client it comes from, or ok false when the
// datagram is dropped (counted and logged as a refusal).
func (p *packetSocket) edgeDatagram(d []byte, peer netip.AddrPort) (payload []byte, client netip.AddrPort, ok bool) {
	e, l := p.lis.edge, p.loop
	payload, client = d, peer
	if e.proxy != nil {
		a, h, rest, err := e.proxy.Datagram(peer.Addr(), d)
		switch a {
		case proxyproto.Use:
			payload, client = rest, h.Client(peer)
		case proxyproto.Close:
			p.refuse(peer, ReasonProxyProtocol)
			if e.headerLog.Allow(l.now) {
				p.lis.log.Warn("PROXY protocol header refused; datagram dropped", "remote", peer.String(), "error", err)
			}
			return nil, client, false
		}
	}
	if e.guard != nil {
		if r := e.guard.Admit(client.Addr(), monoNanos(l.now)); r != access.OK {
			p.refuse(client, api.Reason(r))
			return nil, client, false
		}
	}
	return payload, client, true
}

// refuse counts and logs a refused datagram.
func (p *packetSocket) refuse(from netip.AddrPort, r api.Reason) {
	p.lis.stats[p.loop.index].refused(r)
	p.lis.edge.refused(p.lis, p.loop.now, from, r)
}

// begin starts the delivery of a datagram from client that came from peer
// (the two differ behind a PROXY protocol sender) carrying n bytes.
func (dl *delivery) begin(client, peer netip.AddrPort, n int, guard bool) {
	*dl = delivery{active: true, shown: client, peer: peer}
	if guard && !client.Addr().Unmap().IsLoopback() {
		dl.limited, dl.budget = true, n
	}
}

// route is where an answer of n bytes to to goes, and whether the
// amplification guard lets it: during a delivery, an answer to the client
// the module was shown goes to the socket's peer, within the budget.
func (dl *delivery) route(to netip.AddrPort, n int) (netip.AddrPort, bool) {
	if !dl.active || to != dl.shown {
		return to, true
	}
	if dl.limited {
		if n > dl.budget {
			return to, false
		}
		dl.budget -= n
	}
	return dl.peer, true
}
