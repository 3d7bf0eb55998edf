package proxy

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/pkg/modules/api"
)

// The send_proxy option: a PROXY protocol header ahead of the client's
// bytes on every upstream connection, so that the upstream knows the
// client (its RemoteAddr, which is itself what a header in front of netd
// said) and the address it reached.

// sendProxyVersions maps the option's values to header versions; "" is
// off.
var sendProxyVersions = map[string]int{"": 0, "v1": 1, "v2": 2}

// parseSendProxy checks the send_proxy option.
func parseSendProxy(s string) (int, error) {
	v, ok := sendProxyVersions[s]
	if !ok {
		return 0, fmt.Errorf("send_proxy must be v1 or v2, not %q", s)
	}
	return v, nil
}

// proxyHeader is the header of version v for client c: a PROXY header
// with its addresses, or, for a client without IP addresses (a unix
// socket), a LOCAL one (v2) or UNKNOWN (v1), which tell the upstream to
// take the connection as the proxy's own.
func proxyHeader(v int, c api.Conn) ([]byte, error) {
	h := &proxyproto.Header{Version: v, Transport: proxyproto.TCP}
	src, ok1 := tcpAddrPort(c.RemoteAddr())
	dst, ok2 := tcpAddrPort(c.LocalAddr())
	if ok1 && ok2 {
		h.Source, h.Destination = src, dst
	} else {
		h.Local = true
	}
	return proxyproto.Encode(h)
}

func tcpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil || t.IP == nil {
		return netip.AddrPort{}, false
	}
	return t.AddrPort(), true
}

// sendHeader queues the PROXY header ahead of everything on a new
// upstream connection (Write queues until it connects); on failure the
// connection is aborted.
func (pr *pair) sendHeader(u api.Conn) error {
	b, err := proxyHeader(pr.p.sendProxy, pr.client)
	if err == nil {
		_, err = u.Write(b)
	}
	if err != nil {
		u.Abort(api.ReasonError, err)
		return fmt.Errorf("send_proxy: %w", err)
	}
	return nil
}
