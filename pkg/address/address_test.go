package address

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in      string
		want    Address
		network string
	}{
		{"tcp://127.0.0.1:8888", Address{Scheme: "tcp", Host: "127.0.0.1:8888"}, "tcp"},
		{"tcp://:0", Address{Scheme: "tcp", Host: ":0"}, "tcp"},
		{"tcp://localhost:80", Address{Scheme: "tcp", Host: "localhost:80"}, "tcp"},
		{"tcp://LOCALHOST:0", Address{Scheme: "tcp", Host: "LOCALHOST:0"}, "tcp"},
		{"tcp4://0.0.0.0:65535", Address{Scheme: "tcp4", Host: "0.0.0.0:65535"}, "tcp"},
		{"tcp4://[::ffff:127.0.0.1]:1", Address{Scheme: "tcp4", Host: "[::ffff:127.0.0.1]:1"}, "tcp"},
		{"tcp6://[::1]:8888", Address{Scheme: "tcp6", Host: "[::1]:8888"}, "tcp"},
		{"tcp6://[fe80::1%eth0]:8888", Address{Scheme: "tcp6", Host: "[fe80::1%eth0]:8888"}, "tcp"},
		{"tcp6://localhost:1", Address{Scheme: "tcp6", Host: "localhost:1"}, "tcp"},
		{"udp://:7", Address{Scheme: "udp", Host: ":7"}, "udp"},
		{"udp4://127.0.0.1:7", Address{Scheme: "udp4", Host: "127.0.0.1:7"}, "udp"},
		{"udp6://[::]:7", Address{Scheme: "udp6", Host: "[::]:7"}, "udp"},
		{"unix:///tmp/x.sock", Address{Scheme: "unix", Path: "/tmp/x.sock"}, "unix"},
		{"unix:///" + strings.Repeat("a", 106), Address{Scheme: "unix", Path: "/" + strings.Repeat("a", 106)}, "unix"},
		{"fd://web", Address{Scheme: "fd", Path: "web"}, "tcp"},
		{"fd://web.socket-2", Address{Scheme: "fd", Path: "web.socket-2"}, "tcp"},
	}
	for _, tt := range good {
		a, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if a != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, a, tt.want)
		}
		if s := a.String(); s != tt.in {
			t.Errorf("Parse(%q).String() = %q", tt.in, s)
		}
		if n := a.Network(); n != tt.network {
			t.Errorf("Parse(%q).Network() = %q, want %q", tt.in, n, tt.network)
		}
	}

	const schemes = "(want tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)"
	bad := []struct{ in, want string }{
		{"", `address "": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"127.0.0.1:80", `address "127.0.0.1:80": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"://x", `address "://x": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"http://1.2.3.4:80", `address "http://1.2.3.4:80": unknown scheme "http" ` + schemes},
		{"TCP://1.2.3.4:80", `address "TCP://1.2.3.4:80": unknown scheme "TCP" ` + schemes},
		{"tcp://", `address "tcp://": missing host and port`},
		{"tcp://x", `address "tcp://x": missing port`},
		{"tcp://1.2.3.4", `address "tcp://1.2.3.4": missing port`},
		{"tcp://1.2.3.4:", `address "tcp://1.2.3.4:": missing port`},
		{"tcp://1.2.3.4:http", `address "tcp://1.2.3.4:http": invalid port "http"`},
		{"tcp://1.2.3.4:-1", `address "tcp://1.2.3.4:-1": invalid port "-1"`},
		{"tcp://1.2.3.4:+1", `address "tcp://1.2.3.4:+1": invalid port "+1"`},
		{"tcp://1.2.3.4:65536", `address "tcp://1.2.3.4:65536": port 65536 is out of range (0..65535)`},
		{"tcp://1.2.3.4:99999999999999999999999", `address "tcp://1.2.3.4:99999999999999999999999": port 99999999999999999999999 is out of range (0..65535)`},
		{"tcp://1.2.3.4:80/", `address "tcp://1.2.3.4:80/": invalid port "80/"`},
		{"tcp://::1:80", `address "tcp://::1:80": an IPv6 host must be in brackets, as in [::1]:8888`},
		{"tcp://[::1:80", `address "tcp://[::1:80": missing ']'`},
		{"tcp://example.com:80", `address "tcp://example.com:80": host "example.com" is not an IP address or localhost`},
		{"tcp://localhost.:80", `address "tcp://localhost.:80": host "localhost." is not an IP address or localhost`},
		{"tcp://1.2.3.256:80", `address "tcp://1.2.3.256:80": host "1.2.3.256" is not an IP address or localhost`},
		{"tcp4://[::1]:80", `address "tcp4://[::1]:80": tcp4 wants an IPv4 host, got ::1`},
		{"udp6://127.0.0.1:80", `address "udp6://127.0.0.1:80": udp6 wants an IPv6 host, got 127.0.0.1`},
		{"tcp6://[::ffff:127.0.0.1]:80", `address "tcp6://[::ffff:127.0.0.1]:80": tcp6 wants an IPv6 host, got ::ffff:127.0.0.1`},
		{"unix://", `address "unix://": missing socket path, as in unix:///run/netd.sock`},
		{"unix://x.sock", `address "unix://x.sock": socket path "x.sock" is not absolute (write unix:///path)`},
		{"unix:///a\x00b", `address "unix:///a\x00b": socket path contains a NUL byte`},
		{"unix:///" + strings.Repeat("a", 107), `address "unix:///` + strings.Repeat("a", 107) + `": socket path is 108 bytes long; at most 107 fit`},
		{"fd://", `address "fd://": missing name, as in fd://web`},
		{"fd://a:b", `address "fd://a:b": invalid name "a:b" (printable ASCII without spaces or colons)`},
		{"fd://a b", `address "fd://a b": invalid name "a b" (printable ASCII without spaces or colons)`},
		{"fd://" + strings.Repeat("n", 256), `address "fd://` + strings.Repeat("n", 256) + `": name is longer than 255 characters`},
	}
	for _, tt := range bad {
		a, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", tt.in, a)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tt.in, err, tt.want)
		}
		var e *Error
		if !errors.As(err, &e) || e.Input != tt.in {
			t.Errorf("Parse(%q): error %#v is not an *Error for the input", tt.in, err)
		}
		if a != (Address{}) {
			t.Errorf("Parse(%q) returned %+v with its error", tt.in, a)
		}
	}
}

func TestParseDial(t *testing.T) {
	good := []struct {
		in   string
		want Address
	}{
		{"tcp://127.0.0.1:80", Address{Scheme: "tcp", Host: "127.0.0.1:80"}},
		{"tcp://localhost:80", Address{Scheme: "tcp", Host: "localhost:80"}},
		{"tcp://LocalHost:80", Address{Scheme: "tcp", Host: "LocalHost:80"}},
		{"tcp4://127.0.0.1:65535", Address{Scheme: "tcp4", Host: "127.0.0.1:65535"}},
		{"tcp6://[::1]:1", Address{Scheme: "tcp6", Host: "[::1]:1"}},
		{"unix:///run/app.sock", Address{Scheme: "unix", Path: "/run/app.sock"}},
	}
	for _, tt := range good {
		a, err := ParseDial(tt.in)
		if err != nil || a != tt.want {
			t.Errorf("ParseDial(%q) = %+v, %v; want %+v", tt.in, a, err, tt.want)
		}
		if s := a.String(); s != tt.in {
			t.Errorf("ParseDial(%q).String() = %q", tt.in, s)
		}
	}

	const schemes = "(want tcp, tcp4, tcp6 or unix)"
	bad := []struct{ in, want string }{
		{"127.0.0.1:80", `address "127.0.0.1:80": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6 or unix)`},
		{"udp://127.0.0.1:53", `address "udp://127.0.0.1:53": cannot connect to a udp:// address ` + schemes},
		{"fd://web", `address "fd://web": cannot connect to a fd:// address ` + schemes},
		{"http://1.2.3.4:80", `address "http://1.2.3.4:80": unknown scheme "http" ` + schemes},
		{"tcp://127.0.0.1:0", `address "tcp://127.0.0.1:0": cannot connect to port 0`},
		{"tcp://127.0.0.1:99999", `address "tcp://127.0.0.1:99999": port 99999 is out of range (1..65535)`},
		{"tcp://127.0.0.1", `address "tcp://127.0.0.1": missing port`},
		{"tcp://:80", `address "tcp://:80": missing host`},
		{"tcp://0.0.0.0:80", `address "tcp://0.0.0.0:80": cannot connect to the unspecified address 0.0.0.0`},
		{"tcp6://[::]:80", `address "tcp6://[::]:80": cannot connect to the unspecified address ::`},
		{"tcp://example.com:80", `address "tcp://example.com:80": host "example.com" is not an IP address or localhost`},
		{"tcp4://[::1]:80", `address "tcp4://[::1]:80": tcp4 wants an IPv4 host, got ::1`},
		{"unix://run/app.sock", `address "unix://run/app.sock": socket path "run/app.sock" is not absolute (write unix:///path)`},
	}
	for _, tt := range bad {
		a, err := ParseDial(tt.in)
		if err == nil {
			t.Errorf("ParseDial(%q) = %+v, want an error", tt.in, a)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseDial(%q):\n got %s\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		network, hostport string
		listen, dial      string // the AddrPort, or the error
	}{
		{"tcp", "127.0.0.1:80", "127.0.0.1:80", "127.0.0.1:80"},
		{"tcp", "localhost:80", "127.0.0.1:80", "127.0.0.1:80"},
		{"tcp", "LOCALHOST:0", "127.0.0.1:0", `address "LOCALHOST:0": cannot connect to port 0`},
		{"tcp4", "LocalHost:1", "127.0.0.1:1", "127.0.0.1:1"},
		{"tcp6", "localhost:1", "[::1]:1", "[::1]:1"},
		{"udp6", "LOCALHOST:1", "[::1]:1", `address "LOCALHOST:1": cannot connect over udp6 (want tcp, tcp4 or tcp6)`},
		{"tcp", ":80", "[::]:80", `address ":80": missing host`},
		{"tcp4", ":80", "0.0.0.0:80", `address ":80": missing host`},
		{"udp", ":7", "[::]:7", `address ":7": cannot connect over udp (want tcp, tcp4 or tcp6)`},
		{"tcp", "[::ffff:127.0.0.1]:80", "127.0.0.1:80", "127.0.0.1:80"},
		{"tcp4", "[::ffff:127.0.0.1]:80", "127.0.0.1:80", "127.0.0.1:80"},
		{"tcp6", "[fe80::1%lo]:80", "[fe80::1%lo]:80", "[fe80::1%lo]:80"},
		{"tcp", "0.0.0.0:80", "0.0.0.0:80", `address "0.0.0.0:80": cannot connect to the unspecified address 0.0.0.0`},
		{"tcp", "example.com:80", `address "example.com:80": host "example.com" is not an IP address or localhost`, `address "example.com:80": host "example.com" is not an IP address or localhost`},
		{"tcp", "127.0.0.1", `address "127.0.0.1": missing port`, `address "127.0.0.1": missing port`},
		{"sctp", "127.0.0.1:80", `address "127.0.0.1:80": unknown network "sctp"`, `address "127.0.0.1:80": unknown network "sctp"`},
		{"unix", "/x", `address "/x": unknown network "unix"`, `address "/x": unknown network "unix"`},
	}
	show := func(ap netip.AddrPort, err error) string {
		if err != nil {
			return err.Error()
		}
		return ap.String()
	}
	for _, tt := range tests {
		if got := show(ResolveListen(tt.network, tt.hostport)); got != tt.listen {
			t.Errorf("ResolveListen(%q, %q) = %s, want %s", tt.network, tt.hostport, got, tt.listen)
		}
		if got := show(ResolveDial(tt.network, tt.hostport)); got != tt.dial {
			t.Errorf("ResolveDial(%q, %q) = %s, want %s", tt.network, tt.hostport, got, tt.dial)
		}
	}
}

func TestAddressZero(t *testing.T) {
	if s := (Address{}).String(); s != "" {
		t.Errorf("zero Address String = %q", s)
	}
}

// FuzzParse checks every parser here on one input: no panic, one-line
// errors, a valid address spells itself back, and the rules agree with
// each other (what dials also listens; what parses resolves).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:8888", "tcp6://[::1]:0", "udp://:7", "unix:///tmp/x.sock",
		"fd://web", "tcp://[fe80::1%eth0]:1", "tcp://x", "://", "unix://", "tcp://[::1]:65536",
		"tcp://LOCALHOST:0", "tcp4://[::ffff:1.2.3.4]:1", "tcp://0.0.0.0:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		oneLine := func(err error) {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Errorf("multi-line error %q", err)
			}
		}
		d, derr := ParseDial(s)
		if derr != nil {
			oneLine(derr)
		}
		a, err := Parse(s)
		if err != nil {
			oneLine(err)
			if derr == nil {
				t.Errorf("ParseDial(%q) = %+v, but Parse fails: %v", s, d, err)
			}
			return
		}
		if derr == nil && d != a {
			t.Errorf("ParseDial(%q) = %+v, Parse = %+v", s, d, a)
		}
		if a.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, a.String())
		}
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Errorf("reparse of %q: %+v, %v", s, b, err)
		}
		switch a.Network() {
		case "tcp", "udp", "unix":
		default:
			t.Errorf("Parse(%q).Network() = %q", s, a.Network())
		}
		if a.Host == "" {
			return
		}
		ap, err := ResolveListen(a.Scheme, a.Host)
		if err != nil || !ap.IsValid() {
			t.Errorf("Parse(%q) passes but ResolveListen(%q, %q) = %v, %v", s, a.Scheme, a.Host, ap, err)
		}
		if derr == nil {
			if dp, err := ResolveDial(a.Scheme, a.Host); err != nil || dp != ap {
				t.Errorf("ParseDial(%q) passes but ResolveDial = %v, %v (listen %v)", s, dp, err, ap)
			}
		}
	})
}
