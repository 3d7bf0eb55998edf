package loop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/pkg/modules/api"
)

// The edge of a listener sits between accept and the module: the PROXY
// protocol header, then access control, then TLS (tls.go), then OnAccept.
// docs/EDGE-DESIGN.md draws the path. A listener without any of it pays one
// nil check per accept and per read, nothing more.

// EdgeSpec is what a listener does with a connection before its module
// sees it. The zero value does nothing.
type EdgeSpec struct {
	// ProxyProtocol, when set, reads a PROXY protocol header (v1 or v2)
	// from trusted sources before anything else; the address it carries
	// becomes the connection's RemoteAddr, for the module, the logs and the
	// access checks. On udp every datagram carries its own header.
	ProxyProtocol *proxyproto.Policy
	// Allow, when not empty, lets in only the addresses it holds; Deny
	// refuses those it holds, whatever Allow says.
	Allow, Deny *access.Set
	// Limits bound live connections per source address and the rate of
	// new ones (of datagrams, on udp). Sources 0 is derived from the
	// listener's connection limit.
	Limits access.Limits
	// AccessLog logs one line per closed stream connection.
	AccessLog bool
	// AllowAmplification lets a udp module answer a datagram from a
	// non-loopback source with more bytes than it carried (see
	// packetSocket.WriteTo); without it such answers are dropped.
	AllowAmplification bool
}

// The reasons a connection is refused before its module sees it: the reason
// label of netd_connections_refused_total. ReasonOverLimit is one too, and
// stays counted among the closed as well, as it always was.
const (
	ReasonDenied    = api.Reason(access.Denied)
	ReasonPerSource = api.Reason(access.PerSource)
	ReasonRate      = api.Reason(access.Rate)
	// ReasonProxyProtocol: the PROXY protocol header was required and is
	// missing, bad or late, or came from a source that is not trusted.
	ReasonProxyProtocol api.Reason = "proxy_protocol"
)

// RefusedReasons are the reasons of netd_connections_refused_total, in the
// order metrics list them.
var RefusedReasons = [...]api.Reason{ReasonDenied, ReasonPerSource, ReasonRate, api.ReasonOverLimit, ReasonProxyProtocol}

// refusedIndex is r's slot among RefusedReasons, or -1.
func refusedIndex(r api.Reason) int {
	for i, s := range RefusedReasons {
		if s == r {
			return i
		}
	}
	return -1
}

// errAmplification is what WriteTo returns for an answer the amplification
// guard dropped.
var errAmplification = errors.New("netd: answer larger than the request to a non-loopback source dropped (udp_amplification: deny)")

// edge is a listener's edge, made once from its EdgeSpec; nil when the
// spec asks for nothing on a stream listener.
type edge struct {
	proxy     *proxyproto.Policy
	guard     *access.Guard // nil: no access control
	counted   bool          // guard.Limits counts live connections: release on close
	accessLog bool
	// refusedLog lets one refusal line a second through: any client can
	// cause them.
	refusedLog, headerLog api.LogLimit
}

// monoStart is the origin of the monotonic nanoseconds access.Guard is
// given: the loops' clock readings carry a monotonic part, so Sub uses it.
var monoStart = time.Now()

func monoNanos(now time.Time) int64 { return int64(now.Sub(monoStart)) }

// newEdge makes the edge of a listener from spec; nil when there is
// nothing to do. packet is true for a udp listener, whose Limits count
// datagrams on one loop (a plain Table), never live connections.
func newEdge(spec *EdgeSpec, maxConns int, packet bool) (*edge, error) {
	if spec == nil {
		return nil, nil
	}
	e := &edge{proxy: spec.ProxyProtocol, accessLog: spec.AccessLog && !packet}
	if e.proxy != nil {
		if err := e.proxy.Validate(); err != nil {
			return nil, fmt.Errorf("proxy_protocol: %w", err)
		}
	}
	lim := spec.Limits
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	if spec.Allow.Len() > 0 || spec.Deny.Len() > 0 || lim.Active() {
		e.guard = &access.Guard{Allow: spec.Allow, Deny: spec.Deny}
	}
	if lim.Active() {
		if lim.Sources == 0 {
			// A source with live connections is never forgotten, so the
			// table must hold more sources than there can be connections,
			// with room for the shards' uneven share.
			lim.Sources = max(access.DefaultSources, 2*maxConns)
		}
		var err error
		if packet {
			if lim.MaxPerSource > 0 {
				return nil, errors.New("max_per_source: a udp listener has no connections")
			}
			e.guard.Limits, err = access.NewTable(lim)
		} else {
			e.guard.Limits, err = access.NewShared(lim, 0)
			e.counted = lim.MaxPerSource > 0
		}
		if err != nil {
			return nil, err
		}
	}
	if e.proxy == nil && e.guard == nil && !e.accessLog {
		return nil, nil
	}
	return e, nil
}

// refused logs a refusal, one line a second at most.
func (e *edge) refused(lis *Listener, now time.Time, from netip.AddrPort, r api.Reason) {
	if e.refusedLog.Allow(now) {
		lis.log.Warn("connection refused", "remote", from.String(), "reason", string(r))
	}
}

// accept decides on a connection from peer at accept, before any byte is
// read: wait for its PROXY header, or refuse it (r not ""), or serve it.
// Without PROXY protocol (or from a source that sends none) the access
// check runs here, before the connection costs anything.
func (e *edge) accept(l *eventLoop, peer netip.Addr) (wait bool, r api.Reason) {
	if e.proxy != nil {
		switch e.proxy.Accept(peer) {
		case proxyproto.Close:
			return false, ReasonProxyProtocol
		case proxyproto.Wait:
			return true, ""
		}
	}
	if e.guard != nil {
		return false, api.Reason(e.guard.Admit(peer, monoNanos(l.now)))
	}
	return false, ""
}

// connEdge is a connection's edge state; nil unless its listener has
// PROXY protocol, a per-source connection count or an access log.
type connEdge struct {
	// header holds what was read while a header is awaited and did not
	// complete it; at most proxyproto.MaxHeader bytes.
	header  []byte
	waiting bool // the PROXY header phase: the module has not seen the connection
	// admitted is the address the guard counted; valid until released.
	admitted netip.Addr
	start    time.Time // accepted, for the access log
	in, out  uint64    // bytes read and written, for the access log
}

// headerWaiter is the handler of a connection waiting for its PROXY
// header: the module hears of the connection only once it is admitted.
type headerWaiter struct{ api.StreamBase }

// OnReadable is never called: the loop reads the header itself.
func (headerWaiter) OnReadable(api.Conn) {}

// edgeAccept sets up an accepted connection's edge state, and reports
// whether the connection waits for its PROXY header (the module is not
// told yet). admitted says the guard has counted it under its peer's
// address.
func (c *conn) edgeAccept(wait, admitted bool) bool {
	e := c.lis.edge
	if !wait && !e.counted && !e.accessLog {
		return false
	}
	ce := &connEdge{start: c.loop.now}
	x := c.ensureExtra()
	x.edge = ce
	if admitted && e.counted {
		ce.admitted = c.remote().Addr()
	}
	if !wait {
		return false
	}
	ce.waiting = true
	x.handler = headerWaiter{}
	list := c.loop.timeoutList(e.proxy.HeaderTimeout(), ReasonProxyProtocol, proxyproto.ErrTimeout)
	list.expire = (*conn).headerExpired
	c.setList(list)
	return true
}

// countIn counts n bytes read, for the listener and the access log.
func (c *conn) countIn(n int) {
	c.lis.stats[c.loop.index].bytesIn.Add(uint64(n))
	if c.extra != nil && c.extra.edge != nil {
		c.extra.edge.in += uint64(n)
	}
}

// countOut counts n bytes written, for the listener and the access log.
func (c *conn) countOut(n int) {
	c.lis.stats[c.loop.index].bytesOut.Add(uint64(n))
	if c.extra != nil && c.extra.edge != nil {
		c.extra.edge.out += uint64(n)
	}
}

// headerReadOnce is readOnce while the PROXY header is awaited. It reads
// no more than the header can hold, so that the header buffer stays
// bounded; what follows the header in that read is the client's and is
// delivered as it came.
func (c *conn) headerReadOnce() bool {
	ce := c.extra.edge
	room := min(proxyproto.MaxHeader-len(ce.header), len(c.loop.readBuf))
	n, err := rawRead(int(c.fd), c.loop.readBuf[:room])
	switch {
	case n > 0:
		c.countIn(n)
		c.touch()
		view := c.loop.readBuf[:n]
		if len(ce.header) > 0 {
			ce.header = append(ce.header, view...)
			view = ce.header
		}
		c.headerNext(view, false)
		return !c.closed
	case n == 0 && err == nil:
		c.headerNext(ce.header, true)
		return !c.closed
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	default:
		c.closeNow(api.ReasonError, err)
		return false
	}
}

// headerExpired is the header timeout: what came is judged as all there
// is (proxyproto.Policy.Next).
func (c *conn) headerExpired() {
	c.loop.guard(c, func() { c.headerDecide(c.extra.edge.header, true, false) })
	if !c.closed && c.list != nil && c.list.expire != nil {
		c.closeNow(ReasonProxyProtocol, proxyproto.ErrTimeout)
	}
}

// headerNext decides on the bytes read so far; eof means the client sent
// all it will.
func (c *conn) headerNext(buf []byte, eof bool) {
	c.headerDecide(buf, eof, eof)
}

func (c *conn) headerDecide(buf []byte, final, eof bool) {
	ce, lis := c.extra.edge, c.lis
	a, n, err := lis.edge.proxy.Next(buf, final)
	switch a {
	case proxyproto.Wait:
		if len(ce.header) == 0 {
			ce.header = append(make([]byte, 0, 2*len(buf)), buf...)
		}
		return
	case proxyproto.Use:
		h, perr := proxyproto.Parse(buf[:n])
		if perr != nil {
			err = perr
			break
		}
		c.setRemote(h.Client(c.remote()))
		c.edgeServe(buf[n:], eof)
		return
	case proxyproto.Pass:
		c.edgeServe(buf, eof)
		return
	}
	if lis.edge.headerLog.Allow(c.loop.now) {
		lis.log.Warn("PROXY protocol header refused; connection closed", "remote", c.remoteString(), "error", err)
	}
	c.closeNow(ReasonProxyProtocol, err)
}

// edgeServe ends the header phase: the access check with the real client
// address, then TLS or the module, which is shown rest (the client's
// first bytes) and, with eof, the end of its input.
func (c *conn) edgeServe(rest []byte, eof bool) {
	ce, lis, l := c.extra.edge, c.lis, c.loop
	ce.waiting = false
	ce.header = nil
	c.setList(nil)
	if g := lis.edge.guard; g != nil {
		client := c.remote()
		if r := g.Admit(client.Addr(), monoNanos(l.now)); r != access.OK {
			lis.edge.refused(lis, l.now, client, api.Reason(r))
			c.closeNow(api.Reason(r), nil)
			return
		}
		if lis.edge.counted {
			ce.admitted = client.Addr()
		}
	}
	c.extra.handler = nil
	if lis.spec.IdleTimeout > 0 {
		c.setList(l.idleList(lis.spec.IdleTimeout))
	}
	if lis.spec.TLS != nil {
		if eof {
			c.closeNow(api.ReasonClient, nil) // gone before its handshake
			return
		}
		c.tlsAccept()
		if len(rest) > 0 {
			c.extra.tls.handshakeInput(rest)
		}
		return
	}
	l.guard(c, func() { c.callback(lis.stream.OnAccept) })
	if c.closed {
		return
	}
	if lis.engine.draining.Load() {
		c.drain()
	}
	if eof {
		c.flags |= flagInputClosed
	}
	switch {
	case len(rest) == 0 && !eof:
	case c.flags&flagPausedByModule != 0:
		// Kept for when the module resumes reading.
		kept := append([]byte(nil), rest...)
		c.keptInput = &kept
	default:
		l.guard(c, func() { c.deliver(rest) })
	}
	if !c.closed {
		c.updateInterest()
	}
}

// edgeClosed runs as a connection with edge state closes: the guard
// releases its count, and the access log gets its line. A refused
// connection has had its refusal logged instead.
func (c *conn) edgeClosed(reason api.Reason, err error) {
	ce, e := c.extra.edge, c.lis.edge
	if ce.admitted.IsValid() {
		e.guard.Release(ce.admitted)
		ce.admitted = netip.Addr{}
	}
	if !e.accessLog || refusedIndex(reason) >= 0 {
		return
	}
	kv := make([]any, 0, 18)
	kv = append(kv, "listener", c.lis.spec.Name, "remote", c.remoteString())
	if t := c.TLS(); t != nil {
		kv = append(kv, "tls", tls.VersionName(t.Version))
		if t.ServerName != "" {
			kv = append(kv, "sni", t.ServerName)
		}
	}
	kv = append(kv, "duration", c.loop.now.Sub(ce.start).Round(time.Microsecond),
		"bytes_in", ce.in, "bytes_out", ce.out, "reason", string(reason))
	if err != nil {
		kv = append(kv, "error", err.Error())
	}
	c.lis.log.Info("access", kv...)
}
