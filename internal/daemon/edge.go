package daemon

import (
	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/pkg/loop"
)

// edgeSpec is a listener's PROXY protocol, access control, access log and
// amplification setting as the loop takes them; nil when it sets none.
func edgeSpec(l *config.Listener) *loop.EdgeSpec {
	lim := l.Limits()
	if l.ProxyProtocol == nil && l.Allow == nil && l.Deny == nil && !lim.Active() && !l.AccessLog && !l.UDPAmplification {
		return nil
	}
	return &loop.EdgeSpec{
		ProxyProtocol:      l.ProxyProtocol,
		Allow:              l.Allow,
		Deny:               l.Deny,
		Limits:             lim,
		AccessLog:          l.AccessLog,
		AllowAmplification: l.UDPAmplification,
	}
}
