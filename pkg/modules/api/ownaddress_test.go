package api_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
)

// anInterfaceAddr is an address of this host that is not loopback, or
// "" when it has none.
func anInterfaceAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && p.Addr().Is4() {
			return p.Addr().String()
		}
	}
	return ""
}

type ownCase struct {
	listen, network, dial string
	want                  bool
}

func TestIsOwnAddress(t *testing.T) {
	cases := []ownCase{
		{"tcp://127.0.0.1:8888", "tcp", "127.0.0.1:8888", true},
		{"tcp://127.0.0.1:8888", "tcp", "localhost:8888", true},
		{"tcp://localhost:8888", "tcp", "127.0.0.1:8888", true},
		{"tcp://127.0.0.1:8888", "tcp", "[::ffff:127.0.0.1]:8888", true},
		{"tcp://127.0.0.1:8888", "tcp", "127.0.0.1:8889", false},
		{"tcp://127.0.0.1:8888", "tcp", "127.0.0.2:8888", false},
		{"tcp6://[::1]:8888", "tcp", "[::1]:8888", true},
		{"tcp6://[::1]:8888", "tcp6", "localhost:8888", true},
		{"tcp://0.0.0.0:8888", "tcp", "127.0.0.1:8888", true},
		{"tcp://0.0.0.0:8888", "tcp", "127.9.9.9:8888", true},
		{"tcp://0.0.0.0:8888", "tcp", "[::1]:8888", false}, // 0.0.0.0 takes IPv4 only
		{"tcp://:8888", "tcp", "[::1]:8888", true},
		{"tcp://:8888", "tcp", "127.0.0.1:8888", true},
		{"tcp://[::]:8888", "tcp", "localhost:8888", true},
		{"tcp6://[::]:8888", "tcp", "127.0.0.1:8888", false},
		{"tcp4://:8888", "tcp", "127.0.0.1:8888", true},
		{"tcp://0.0.0.0:8888", "tcp", "192.0.2.1:8888", false}, // not an address of this host
		{"tcp://127.0.0.1:0", "tcp", "127.0.0.1:0", false},     // port unknown until bound
		{"unix:///run/netd/a.sock", "unix", "/run/netd/a.sock", true},
		{"unix:///run/netd/a.sock", "unix", "/run/netd/../netd/a.sock", true},
		{"unix:///run/netd/a.sock", "unix", "/run/netd/b.sock", false},
		{"unix:///run/netd/a.sock", "tcp", "127.0.0.1:8888", false},
		{"fd://web", "tcp", "127.0.0.1:8888", false},
		{"", "tcp", "127.0.0.1:8888", false},
	}
	if a := anInterfaceAddr(); a != "" {
		cases = append(cases,
			ownCase{"tcp://0.0.0.0:8888", "tcp", net.JoinHostPort(a, "8888"), true},
			ownCase{"tcp://127.0.0.1:8888", "tcp", net.JoinHostPort(a, "8888"), false})
	}
	for _, tc := range cases {
		if got := (api.Setup{Address: tc.listen}).IsOwnAddress(tc.network, tc.dial); got != tc.want {
			t.Errorf("listening on %q, IsOwnAddress(%q, %q) = %v, want %v", tc.listen, tc.network, tc.dial, got, tc.want)
		}
	}
}
