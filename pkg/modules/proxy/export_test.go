package proxy

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/netd/netd/pkg/modules/internal/relay"
)

// HighWater is the bound past which one side stops being read.
const HighWater = relay.HighWater

// Active returns the live connections to each upstream.
func (p *Proxy) Active() []int64 {
	out := make([]int64, len(p.upstreams))
	for i, u := range p.upstreams {
		out[i] = u.active.Load()
	}
	return out
}

// FailedConnects returns the connects that failed so far, from the
// upstreams' series of netd_proxy_upstream_connects_total.
func (p *Proxy) FailedConnects() uint64 {
	var n float64
	for _, u := range p.upstreams {
		var m dto.Metric
		if err := u.connectsFailed.Write(&m); err == nil {
			n += m.GetCounter().GetValue()
		}
	}
	return uint64(n)
}
