package proxy

// Active returns the live connections to each upstream.
func (p *Proxy) Active() []int64 {
	out := make([]int64, len(p.upstreams))
	for i, u := range p.upstreams {
		out[i] = u.active.Load()
	}
	return out
}

// FailedConnects returns the connects that failed so far.
func (p *Proxy) FailedConnects() uint64 { return p.failedConnects.Load() }
