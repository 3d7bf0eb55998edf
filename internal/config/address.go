package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Address is a listener's address, parsed from its config spelling.
type Address struct {
	Scheme string // tcp, tcp4, tcp6, udp, udp4, udp6, unix, fd
	Host   string // host:port for tcp*/udp* (port may be 0); "" otherwise
	Path   string // for unix: the socket path; for fd: the NAME
}

// maxUnixPath is the room in sockaddr_un.sun_path on Linux, less the NUL.
const maxUnixPath = 107

// Network returns the kind of socket a module serves on a: "tcp", "udp" or
// "unix". An fd:// socket is taken to be a stream socket, since systemd
// socket units pass stream sockets unless told otherwise.
func (a Address) Network() string {
	switch a.Scheme {
	case "udp", "udp4", "udp6":
		return "udp"
	case "unix":
		return "unix"
	}
	return "tcp"
}

// String returns the address as it is spelled in a config file, such as
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

// ParseAddress parses a listener address. tcp and udp addresses need
// host:port with a port from 0 to 65535 and a host that is an IP literal,
// localhost or empty (every interface); unix needs an absolute path and fd
// a name. Errors are one line that quotes s.
func ParseAddress(s string) (Address, error) {
	a, problem := parseAddress(s)
	if problem != "" {
		return Address{}, fmt.Errorf("address %q: %s", s, problem)
	}
	return a, nil
}

func parseAddress(s string) (Address, string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return Address{}, "missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)"
	}
	switch scheme {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		if problem := checkHostPort(scheme, rest); problem != "" {
			return Address{}, problem
		}
		return Address{Scheme: scheme, Host: rest}, ""
	case "unix":
		switch {
		case rest == "":
			return Address{}, "missing socket path, as in unix:///run/netd.sock"
		case !strings.HasPrefix(rest, "/"):
			return Address{}, fmt.Sprintf("socket path %q is not absolute (write unix:///path)", rest)
		case strings.IndexByte(rest, 0) >= 0:
			return Address{}, "socket path contains a NUL byte"
		case len(rest) > maxUnixPath:
			return Address{}, fmt.Sprintf("socket path is %d bytes long; at most %d fit", len(rest), maxUnixPath)
		}
		return Address{Scheme: scheme, Path: rest}, ""
	case "fd":
		if rest == "" {
			return Address{}, "missing name, as in fd://web"
		}
		if problem := checkFDName(rest); problem != "" {
			return Address{}, problem
		}
		return Address{Scheme: scheme, Path: rest}, ""
	}
	return Address{}, fmt.Sprintf("unknown scheme %q (want tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)", scheme)
}

// checkHostPort validates the host:port of a tcp or udp address and
// returns what is wrong with it, or "".
func checkHostPort(scheme, hostport string) string {
	if hostport == "" {
		return "missing host and port"
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			switch ae.Err {
			case "missing port in address":
				return "missing port"
			case "too many colons in address":
				return "an IPv6 host must be in brackets, as in [::1]:8888"
			}
			return strings.TrimSuffix(ae.Err, " in address")
		}
		return err.Error()
	}
	if port == "" {
		return "missing port"
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil {
		if strings.Trim(port, "0123456789") == "" {
			return fmt.Sprintf("port %s is out of range (0..65535)", port)
		}
		return fmt.Sprintf("invalid port %q", port)
	}
	if n > 65535 {
		return fmt.Sprintf("port %d is out of range (0..65535)", n)
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Sprintf("host %q is not an IP address or localhost", host)
	}
	switch {
	case strings.HasSuffix(scheme, "4") && !ip.Is4():
		return fmt.Sprintf("%s wants an IPv4 host, got %s", scheme, host)
	case strings.HasSuffix(scheme, "6") && !ip.Is6():
		return fmt.Sprintf("%s wants an IPv6 host, got %s", scheme, host)
	}
	return ""
}

// checkFDName applies systemd's rules for FileDescriptorName: at most 255
// printable ASCII characters, no colon.
func checkFDName(name string) string {
	if len(name) > 255 {
		return "name is longer than 255 characters"
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == ':' {
			return fmt.Sprintf("invalid name %q (printable ASCII without spaces or colons)", name)
		}
	}
	return ""
}

// bindKey identifies what a listener binds, so that two listeners that
// would bind the same socket can be reported before either binds. It is ""
// for addresses that cannot collide in a way worth checking: port 0, and fd
// (systemd may pass several sockets under one name).
func (a Address) bindKey() string {
	switch a.Network() {
	case "unix":
		return "unix " + path.Clean(a.Path)
	case "tcp", "udp":
		if a.Scheme == "fd" {
			return ""
		}
		host, port, err := net.SplitHostPort(a.Host)
		if err != nil {
			return ""
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return ""
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			host = ip.String()
		} else {
			host = strings.ToLower(host)
		}
		return fmt.Sprintf("%s %s %d", a.Network(), host, n)
	}
	return ""
}
