package admin

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// hostCheck says which Host headers a TCP admin endpoint answers:
// localhost and its subdomains, loopback IPs, the host of its configured
// address, and the IP the request arrived at. A DNS rebinding attack needs
// a name the attacker controls to resolve to this host; none of these is
// one (browsers resolve *.localhost to loopback themselves, and an IP
// literal resolves to nothing). The zero hostCheck (a unix socket, which
// no browser reaches) allows every Host.
type hostCheck struct {
	on         bool
	configured string // the configured address's host, normalized; may be ""
}

func newHostCheck(address string) hostCheck {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = ""
	}
	return hostCheck{on: true, configured: normalHost(host)}
}

// normalHost lower-cases a host, drops a trailing dot and IPv6 brackets,
// and spells an IP literal canonically.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

// hostOf is the host of a Host header or an Origin's host, without port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return normalHost(h)
	}
	return normalHost(hostport)
}

// allowed reports whether host (from a Host header or an Origin) names
// this endpoint for a request that arrived at local (nil when unknown).
func (c hostCheck) allowed(host string, local net.Addr) bool {
	h := hostOf(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.IsLoopback() {
			return true
		}
		if a, ok := local.(*net.TCPAddr); ok {
			if l, ok := netip.AddrFromSlice(a.IP); ok && l.Unmap() == ip {
				return true
			}
		}
	}
	return h != "" && h == c.configured
}

// guard refuses, before any route runs, a TCP request whose Host does not
// name this endpoint (421), and a POST whose Origin is not such a host
// (403): a page in a browser may send a POST to any address it likes, but
// it cannot forge Origin. Over a unix socket, where Host means nothing,
// only Origin is checked, against the loopback names.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if s.hosts.on && r.Host != "" && !s.hosts.allowed(r.Host, local) {
			s.refused(r, "Host")
			text(w, http.StatusMisdirectedRequest, "host "+quoteHost(r.Host)+" is not this admin endpoint: use localhost, a loopback IP or the configured address")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			u, err := url.Parse(origin)
			if err != nil || u.Host == "" || !s.hosts.allowed(u.Host, local) {
				s.refused(r, "Origin")
				text(w, http.StatusForbidden, "cross-origin request refused: origin "+quoteHost(origin)+" is not this admin endpoint")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refused logs a refused request, at most once a second.
func (s *Server) refused(r *http.Request, header string) {
	if s.refusedLog.Allow(time.Now()) {
		s.log.Warn("admin request refused: "+header+" names another site (DNS rebinding or cross-site request?)",
			"method", r.Method, "path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
	}
}

// quoteHost quotes a client's header for a one-line answer, bounded.
func quoteHost(h string) string {
	const max = 100
	if len(h) > max {
		h = h[:max] + "..."
	}
	return strconv.Quote(h)
}
