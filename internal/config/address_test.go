package config

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	good := []struct {
		in      string
		want    Address
		network string
	}{
		{"tcp://127.0.0.1:8888", Address{Scheme: "tcp", Host: "127.0.0.1:8888"}, "tcp"},
		{"tcp://:0", Address{Scheme: "tcp", Host: ":0"}, "tcp"},
		{"tcp://localhost:80", Address{Scheme: "tcp", Host: "localhost:80"}, "tcp"},
		{"tcp4://0.0.0.0:65535", Address{Scheme: "tcp4", Host: "0.0.0.0:65535"}, "tcp"},
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
		a, err := ParseAddress(tt.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tt.in, err)
			continue
		}
		if a != tt.want {
			t.Errorf("ParseAddress(%q) = %+v, want %+v", tt.in, a, tt.want)
		}
		if s := a.String(); s != tt.in {
			t.Errorf("ParseAddress(%q).String() = %q", tt.in, s)
		}
		if n := a.Network(); n != tt.network {
			t.Errorf("ParseAddress(%q).Network() = %q, want %q", tt.in, n, tt.network)
		}
	}

	bad := []struct{ in, want string }{
		{"", `address "": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"127.0.0.1:80", `address "127.0.0.1:80": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"://x", `address "://x": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"http://1.2.3.4:80", `address "http://1.2.3.4:80": unknown scheme "http" (want tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
		{"TCP://1.2.3.4:80", `address "TCP://1.2.3.4:80": unknown scheme "TCP" (want tcp, tcp4, tcp6, udp, udp4, udp6, unix or fd)`},
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
		{"tcp://1.2.3.256:80", `address "tcp://1.2.3.256:80": host "1.2.3.256" is not an IP address or localhost`},
		{"tcp4://[::1]:80", `address "tcp4://[::1]:80": tcp4 wants an IPv4 host, got ::1`},
		{"udp6://127.0.0.1:80", `address "udp6://127.0.0.1:80": udp6 wants an IPv6 host, got 127.0.0.1`},
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
		a, err := ParseAddress(tt.in)
		if err == nil {
			t.Errorf("ParseAddress(%q) = %+v, want an error", tt.in, a)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseAddress(%q):\n got %s\nwant %s", tt.in, err, tt.want)
		}
		if a != (Address{}) {
			t.Errorf("ParseAddress(%q) returned %+v with its error", tt.in, a)
		}
	}
}

func TestAddressZero(t *testing.T) {
	if s := (Address{}).String(); s != "" {
		t.Errorf("zero Address String = %q", s)
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:8888", "tcp6://[::1]:0", "udp://:7", "unix:///tmp/x.sock",
		"fd://web", "tcp://[fe80::1%eth0]:1", "tcp://x", "://", "unix://", "tcp://[::1]:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		// A valid address spells itself back, and parses to itself again.
		if a.String() != s {
			t.Errorf("ParseAddress(%q).String() = %q", s, a.String())
		}
		if b, err := ParseAddress(a.String()); err != nil || b != a {
			t.Errorf("reparse of %q: %+v, %v", s, b, err)
		}
		switch a.Network() {
		case "tcp", "udp", "unix":
		default:
			t.Errorf("ParseAddress(%q).Network() = %q", s, a.Network())
		}
		_ = a.bindKey()
	})
}
