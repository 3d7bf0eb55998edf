package config

import (
	"testing"

	"github.com/netd/netd/pkg/address"
)

// TestListenerAddressAsTheLoopBindsIt parses configs whose addresses the
// config and the loop once read differently: each must validate, and to
// the host the loop binds (the loop's own test binds the same spelling).
func TestListenerAddressAsTheLoopBindsIt(t *testing.T) {
	tests := []struct {
		address string
		want    Address
	}{
		{"tcp://LOCALHOST:0", Address{Scheme: "tcp", Host: "LOCALHOST:0"}},
		{"tcp6://LocalHost:0", Address{Scheme: "tcp6", Host: "LocalHost:0"}},
		{"tcp4://[::ffff:127.0.0.1]:0", Address{Scheme: "tcp4", Host: "[::ffff:127.0.0.1]:0"}},
	}
	for _, tt := range tests {
		src := "listeners:\n  - {name: a, address: \"" + tt.address + "\", module: test-echo}\n"
		c, err := Parse("c.yaml", []byte(src), nil)
		if err != nil {
			t.Errorf("%s: %v", tt.address, err)
			continue
		}
		if got := c.Listeners[0].Addr; got != tt.want {
			t.Errorf("%s: Addr = %+v, want %+v", tt.address, got, tt.want)
		}
	}
	// tcp6 cannot bind an IPv4-mapped address (the socket is IPv6-only):
	// validate says so rather than serve.
	_, err := Parse("c.yaml", []byte("listeners:\n  - {name: a, address: \"tcp6://[::ffff:127.0.0.1]:1\", module: test-echo}\n"), nil)
	if want := `c.yaml:2:24: listener "a": address "tcp6://[::ffff:127.0.0.1]:1": tcp6 wants an IPv6 host, got ::ffff:127.0.0.1`; err == nil || err.Error() != want {
		t.Errorf("tcp6 with a mapped host: %v, want %s", err, want)
	}
}

func TestBindKey(t *testing.T) {
	same := [][]string{
		{"tcp://127.0.0.1:80", "tcp://localhost:80", "tcp://LOCALHOST:80", "tcp4://127.0.0.1:80", "tcp://[::ffff:127.0.0.1]:80"},
		{"tcp://[::1]:80", "tcp6://localhost:80", "tcp://[0:0::1]:80"},
		{"tcp://:80", "tcp4://:80", "tcp6://:80"},
		{"udp://127.0.0.1:80", "udp4://Localhost:80"},
		{"unix:///run/x.sock", "unix:///run//x.sock", "unix:///run/./x.sock"},
	}
	keys := map[string]int{}
	for i, group := range same {
		for _, s := range group {
			k := bindKey(mustAddress(t, s))
			if k == "" {
				t.Errorf("bindKey(%s) is empty", s)
				continue
			}
			if g, seen := keys[k]; seen && g != i {
				t.Errorf("bindKey(%s) = %q, the key of group %d", s, k, g)
			}
			keys[k] = i
		}
		if k := bindKey(mustAddress(t, group[0])); keys[k] != i {
			t.Errorf("group %d has more than one key", i)
		}
	}
	if len(keys) != len(same) {
		t.Errorf("%d keys for %d groups: %v", len(keys), len(same), keys)
	}
	for _, s := range []string{"tcp://127.0.0.1:0", "fd://web", "udp://:0"} {
		if k := bindKey(mustAddress(t, s)); k != "" {
			t.Errorf("bindKey(%s) = %q, want none", s, k)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:9900", ""},
		{"LOCALHOST:0", ""},
		{":9900", ""},
		{"localhost", "missing port"},
		{"example.com:80", `host "example.com" is not an IP address or localhost`},
	} {
		if got := checkHostPort("tcp", tt.in); got != tt.want {
			t.Errorf("checkHostPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func mustAddress(t *testing.T, s string) Address {
	t.Helper()
	a, err := address.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
