// Package address is netd's one parser of socket addresses: the URL-like
// spelling of a listener (tcp://, tcp4://, tcp6://, udp://, udp4://,
// udp6://, unix:///path, fd://NAME), the same spelling for an address to
// connect to, and the host:port that the loop binds and dials.
//
// Names are never resolved: a host is an IP literal, localhost in any
// case (host names are case-insensitive), or, for an address to listen
// on, empty for every interface. A DNS lookup would block the event loop,
// and an address that validates must be one that binds, so config, loop
// and modules all parse here. The package imports nothing of netd.
package address

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Address is a socket address, parsed from its URL-like spelling.
type Address struct {
	Scheme string // tcp, tcp4, tcp6, udp, udp4, udp6, unix, fd
	Host   string // host:port for tcp*/udp*, as spelled; "" otherwise
	Path   string // for unix: the socket path; for fd: the NAME
}

// Error is the error of every parser here: the text that was parsed and
// what is wrong with it. Its message is one line.
type Error struct {
	Input   string
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("address %q: %s", e.Input, e.Problem) }

// MaxUnixPath is the room in sockaddr_un.sun_path on Linux, less the NUL.
const MaxUnixPath = 107

// mode says what an address is for: the rules for host and port differ.
type mode int

const (
	listen mode = iota // the host may be empty or unspecified, the port 0
	dial               // a host that names one machine, a port from 1
)

// Network returns the kind of socket a serves: "tcp", "udp" or "unix". An
// fd:// socket is taken to be a stream socket, since systemd socket units
// pass stream sockets unless told otherwise.
func (a Address) Network() string {
	switch a.Scheme {
	case "udp", "udp4", "udp6":
		return "udp"
	case "unix":
		return "unix"
	}
	return "tcp"
}

// String returns the address as Parse takes it, such as
// tcp://127.0.0.1:8888, unix:///tmp/x.sock or fd://web.
func (a Address) String() string {
	switch a.Scheme {
	case "":
		return ""
	case "unix", "fd":
		return a.Scheme + "://" + a.Path
	}
	return a.Scheme + "://" + a.Host
}

// Parse parses an address to listen on. tcp and udp addresses need
// host:port with a port from 0 to 65535 and a host that is an IP literal,
// localhost or empty (every interface); unix needs an absolute path and fd
// a name as systemd's FileDescriptorName allows.
func Parse(s string) (Address, error) {
	return parse(s, listen)
}

// ParseDial parses an address to connect to, as Loop.Dial takes it once
// split: tcp, tcp4 or tcp6 with a host that names one machine (an IP
// literal that is not unspecified, or localhost) and a port from 1, or
// unix with an absolute path.
func ParseDial(s string) (Address, error) {
	return parse(s, dial)
}

// Schemes each mode accepts, for the error that names them.
const (
	listenSchemes = "tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd"
	dialSchemes   = "tcp, tcp4, tcp6 or unix"
)

func parse(s string, m mode) (Address, error) {
	fail := func(format string, args ...any) (Address, error) {
		return Address{}, &Error{Input: s, Problem: fmt.Sprintf(format, args...)}
	}
	want := listenSchemes
	if m == dial {
		want = dialSchemes
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return fail("missing scheme, as in tcp://127.0.0.1:8888 (%s)", want)
	}
	switch scheme {
	case "udp", "udp4", "udp6":
		if m == dial {
			return fail("cannot connect to a %s:// address (want %s)", scheme, want)
		}
		fallthrough
	case "tcp", "tcp4", "tcp6":
		if _, problem := resolve(scheme, rest, m); problem != "" {
			return fail("%s", problem)
		}
		return Address{Scheme: scheme, Host: rest}, nil
	case "unix":
		switch {
		case rest == "":
			return fail("missing socket path, as in unix:///run/netd.sock")
		case !strings.HasPrefix(rest, "/"):
			return fail("socket path %q is not absolute (write unix:///path)", rest)
		case strings.IndexByte(rest, 0) >= 0:
			return fail("socket path contains a NUL byte")
		case len(rest) > MaxUnixPath:
			return fail("socket path is %d bytes long; at most %d fit", len(rest), MaxUnixPath)
		}
		return Address{Scheme: scheme, Path: rest}, nil
	case "fd":
		if m == dial {
			return fail("cannot connect to a %s:// address (want %s)", scheme, want)
		}
		if problem := checkFDName(rest); problem != "" {
			return fail("%s", problem)
		}
		return Address{Scheme: scheme, Path: rest}, nil
	}
	return fail("unknown scheme %q (want %s)", scheme, want)
}

// ResolveListen checks the host:port of a tcp or udp address to listen on
// and returns the IP and port to bind: an empty host is every interface
// (0.0.0.0 for tcp4 and udp4, [::] otherwise, which takes both families
// unless the socket is IPv6-only), localhost is 127.0.0.1 (::1 for tcp6
// and udp6). An IPv4-mapped IPv6 host is its IPv4 address. network is
// tcp, tcp4, tcp6, udp, udp4 or udp6.
func ResolveListen(network, hostport string) (netip.AddrPort, error) {
	ap, problem := resolve(network, hostport, listen)
	if problem != "" {
		return netip.AddrPort{}, &Error{Input: hostport, Problem: problem}
	}
	return ap, nil
}

// ResolveDial is ResolveListen for an address to connect to: the host
// must name one machine and the port must not be 0. network is tcp, tcp4
// or tcp6.
func ResolveDial(network, hostport string) (netip.AddrPort, error) {
	ap, problem := resolve(network, hostport, dial)
	if problem != "" {
		return netip.AddrPort{}, &Error{Input: hostport, Problem: problem}
	}
	return ap, nil
}

// resolve is the host:port rule of every parser here. It returns the
// address, or what is wrong with hostport.
func resolve(network, hostport string, m mode) (netip.AddrPort, string) {
	var no netip.AddrPort
	switch network {
	case "tcp", "tcp4", "tcp6":
	case "udp", "udp4", "udp6":
		if m == dial {
			return no, fmt.Sprintf("cannot connect over %s (want tcp, tcp4 or tcp6)", network)
		}
	default:
		return no, fmt.Sprintf("unknown network %q", network)
	}
	if hostport == "" {
		return no, "missing host and port"
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			switch ae.Err {
			case "missing port in address":
				return no, "missing port"
			case "too many colons in address":
				return no, "an IPv6 host must be in brackets, as in [::1]:8888"
			}
			return no, strings.TrimSuffix(ae.Err, " in address")
		}
		return no, err.Error()
	}
	if port == "" {
		return no, "missing port"
	}
	ports := "0..65535"
	if m == dial {
		ports = "1..65535"
	}
	n, err := strconv.ParseUint(port, 10, 64)
	switch {
	case err != nil && strings.Trim(port, "0123456789") == "":
		return no, fmt.Sprintf("port %s is out of range (%s)", port, ports)
	case err != nil:
		return no, fmt.Sprintf("invalid port %q", port)
	case n > 65535:
		return no, fmt.Sprintf("port %d is out of range (%s)", n, ports)
	case n == 0 && m == dial:
		return no, "cannot connect to port 0"
	}
	v4 := strings.HasSuffix(network, "4")
	v6 := strings.HasSuffix(network, "6")
	var ip netip.Addr
	switch {
	case host == "" && m == dial:
		return no, "missing host"
	case host == "" && v4:
		ip = netip.IPv4Unspecified()
	case host == "":
		ip = netip.IPv6Unspecified()
	case strings.EqualFold(host, "localhost") && v6:
		ip = netip.IPv6Loopback()
	case strings.EqualFold(host, "localhost"):
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return no, fmt.Sprintf("host %q is not an IP address or localhost", host)
		}
		ip = ip.Unmap()
	}
	switch {
	case v4 && !ip.Is4():
		return no, fmt.Sprintf("%s wants an IPv4 host, got %s", network, host)
	case v6 && !ip.Is6():
		return no, fmt.Sprintf("%s wants an IPv6 host, got %s", network, host)
	case m == dial && ip.IsUnspecified():
		return no, fmt.Sprintf("cannot connect to the unspecified address %s", host)
	}
	return netip.AddrPortFrom(ip, uint16(n)), ""
}

// checkFDName applies systemd's rules for FileDescriptorName: at most 255
// printable ASCII characters, no colon.
func checkFDName(name string) string {
	switch {
	case name == "":
		return "missing name, as in fd://web"
	case len(name) > 255:
		return "name is longer than 255 characters"
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == ':' {
			return fmt.Sprintf("invalid name %q (printable ASCII without spaces or colons)", name)
		}
	}
	return ""
}
