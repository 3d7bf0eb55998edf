package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
)

// TestEdge checks what testdata/good/edge.* decode to: the PROXY protocol
// policy with its default timeout, the access lists, and the top-level
// access_log as the default of the stream listeners that set none.
func TestEdge(t *testing.T) {
	for _, path := range []string{"testdata/good/edge.yaml", "testdata/good/edge.hcl"} {
		t.Run(path, func(t *testing.T) {
			c, err := Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			by := map[string]Listener{}
			for _, l := range c.Listeners {
				by[l.Name] = l
			}
			lb, quiet, udp, local := by["behind-lb"], by["quiet"], by["chargen-udp"], by["local"]
			tests := []struct {
				what      string
				got, want any
			}{
				{"behind-lb mode", lb.ProxyProtocol.Mode, proxyproto.Require},
				{"behind-lb timeout", lb.ProxyProtocol.HeaderTimeout(), 5 * time.Second},
				{"quiet timeout (default)", quiet.ProxyProtocol.HeaderTimeout(), proxyproto.DefaultTimeout},
				{"quiet mode", quiet.ProxyProtocol.Mode, proxyproto.Optional},
				{"trusted 10.1.2.3", lb.ProxyProtocol.Trusted.Contains(netip.MustParseAddr("10.1.2.3")), true},
				{"trusted 192.0.2.2", lb.ProxyProtocol.Trusted.Contains(netip.MustParseAddr("192.0.2.2")), false},
				{"trusted 2001:db8::1", lb.ProxyProtocol.Trusted.Contains(netip.MustParseAddr("2001:db8::1")), true},
				{"allow 198.51.100.9 (mapped prefix)", lb.Allow.Contains(netip.MustParseAddr("198.51.100.9")), true},
				{"deny 203.0.113.7", lb.Deny.Contains(netip.MustParseAddr("203.0.113.7")), true},
				{"limits", lb.Limits(), access.Limits{MaxPerSource: 10, Rate: 2.5, Burst: 20}},
				{"behind-lb access_log (global)", lb.AccessLog, true},
				{"quiet access_log (own)", quiet.AccessLog, false},
				{"udp access_log", udp.AccessLog, false},
				{"local access_log (global)", local.AccessLog, true},
				{"udp amplification", udp.UDPAmplification, true},
				{"udp rate", udp.Rate, 100.0},
				{"local has no lists", local.Allow == nil && local.Deny == nil && local.ProxyProtocol == nil, true},
			}
			for _, tt := range tests {
				if tt.got != tt.want {
					t.Errorf("%s = %v, want %v", tt.what, tt.got, tt.want)
				}
			}
		})
	}
}
