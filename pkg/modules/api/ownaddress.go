package api

import (
	"net"
	"net/netip"
	"path"
	"strings"
)

// IsOwnAddress reports whether a connect to address on network ("tcp",
// "tcp4", "tcp6" with host:port, or "unix" with a path, as Loop.Dial takes
// them) would reach the listener's own socket, Setup.Address: a module
// that forwarded there would connect to itself, and each connection would
// open another until the descriptors ran out. A wildcard listen address
// (0.0.0.0, ::, or none) is reached through every local address on its
// port; localhost is every loopback address. Port 0 and fd:// listeners,
// whose address is not known before they bind, never match.
func (s Setup) IsOwnAddress(network, address string) bool {
	scheme, listen, ok := strings.Cut(s.Address, "://")
	if !ok {
		return false
	}
	if scheme == "unix" || network == "unix" {
		return scheme == network && path.Clean(listen) == path.Clean(address)
	}
	if !strings.HasPrefix(scheme, "tcp") || !strings.HasPrefix(network, "tcp") {
		return false
	}
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil || lport == "0" {
		return false
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil || port != lport {
		return false
	}
	dial := hostAddrs(host)
	if lhost == "" || isUnspecified(lhost) {
		// The families the wildcard takes, as the loop binds it.
		var v4, v6 bool
		switch {
		case scheme == "tcp4", lhost == "0.0.0.0":
			v4 = true
		case scheme == "tcp6":
			v6 = true
		default: // tcp on :: or on no host takes both
			v4, v6 = true, true
		}
		for _, a := range dial {
			if (a.Is4() && v4 || a.Is6() && v6) && isLocal(a) {
				return true
			}
		}
		return false
	}
	for _, l := range hostAddrs(lhost) {
		for _, a := range dial {
			if l == a {
				return true
			}
		}
	}
	return false
}

// hostAddrs is what host stands for: an IP address, or for localhost
// both loopback addresses.
func hostAddrs(host string) []netip.Addr {
	if strings.EqualFold(host, "localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	return []netip.Addr{a.Unmap()}
}

func isUnspecified(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// isLocal reports whether a is an address of this host: a loopback or
// unspecified one, or one on an interface.
func isLocal(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
