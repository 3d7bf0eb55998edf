package access

import "net/netip"

// Guard is the whole access check of one listener, made once from its
// config and asked at every accept (after PROXY protocol, with the real
// client address) or, on UDP, at every datagram.
type Guard struct {
	// Allow, when not empty, lets in only the addresses it contains.
	Allow *Set
	// Deny refuses the addresses it contains; it wins over Allow.
	Deny *Set
	// Limits counts per source; nil means no per-source limit.
	Limits Counter
}

// Admit decides on a new connection from a at time now (nanoseconds on the
// caller's monotonic clock). On OK, and only then, the caller must call
// Release(a) once when the connection closes. A stream listener's Guard
// checks allow/deny first, so a denied source costs no table slot.
func (g *Guard) Admit(a netip.Addr, now int64) Reason {
	if g.Deny.Contains(a) || (g.Allow.Len() > 0 && !g.Allow.Contains(a)) {
		return Denied
	}
	if g.Limits == nil {
		return OK
	}
	return g.Limits.Acquire(a, now)
}

// Release uncounts a connection that Admit let in.
func (g *Guard) Release(a netip.Addr) {
	if g.Limits != nil {
		g.Limits.Release(a)
	}
}
