package config

import (
	"math"
	"strings"
	"time"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
)

// The edge of a listener: PROXY protocol, access control, the access log
// and the UDP amplification guard. The keys are rows of listenerKeys (and
// access_log of topKeys); what they decode to is checked here, once the
// whole listener is known, since whether a key applies depends on its
// network.

// edgeMeta is where a listener's edge keys are, for the checks made once
// the listener is decoded; a zero Pos means the key is absent.
type edgeMeta struct {
	proxy, allow, deny, maxPerSource, rate, burst, accessLog, udpAmp Pos
}

// amplificationChoices is what udp_amplification accepts: "deny", the
// default, or "allow".
var amplificationChoices = []string{"deny", "allow"}

// proxyKeys is a listener's proxy_protocol block.
var proxyKeys = []key[*proxyproto.Policy]{
	{name: "mode", required: true,
		decode: func(d *decoder, p *proxyproto.Policy, f *field, what string) {
			s := d.string(what, f.Val)
			if f.Val.Kind != kindString {
				return
			}
			m, err := proxyproto.ParseMode(s)
			if err != nil { // the error names the mode
				d.errs.add(f.Val.Pos, "%s: %v", strings.TrimSuffix(what, ".mode"), err)
				return
			}
			p.Mode = m
		},
		same: func(a, b *proxyproto.Policy) bool { return a.Mode == b.Mode }},
	{name: "trusted", required: true,
		decode: func(d *decoder, p *proxyproto.Policy, f *field, what string) { p.Trusted = d.cidrs(what, f.Val) },
		same:   func(a, b *proxyproto.Policy) bool { return a.Trusted.String() == b.Trusted.String() }},
	durationKey("timeout", func(p *proxyproto.Policy) *time.Duration { return &p.Timeout }),
}

// Listener keys of the edge, as rows of listenerKeys.
var (
	proxyProtocolKey = key[*Listener]{name: "proxy_protocol", hcl: hclBlock,
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.proxy = f.KeyPos
			if f.Val.Kind != kindMap {
				d.errs.add(f.Val.Pos, "%s: want a mapping, got %s", what, f.Val.Describe())
				return
			}
			p := &proxyproto.Policy{}
			decodeMap(d, proxyKeys, f.Val, p, &what, ".", f.KeyPos)
			if p.Mode != 0 && p.Trusted != nil {
				if err := p.Validate(); err != nil {
					d.errs.add(f.Val.Pos, "%s: %v", what, err)
					return
				}
			}
			l.ProxyProtocol = p
		},
		same: func(a, b *Listener) bool {
			if a.ProxyProtocol == nil || b.ProxyProtocol == nil {
				return a.ProxyProtocol == b.ProxyProtocol
			}
			return differs(proxyKeys, a.ProxyProtocol, b.ProxyProtocol) == nil
		}}
	allowKey = key[*Listener]{name: "allow",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.allow = f.KeyPos
			l.Allow = d.cidrs(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.Allow.String() == b.Allow.String() }}
	denyKey = key[*Listener]{name: "deny",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.deny = f.KeyPos
			l.Deny = d.cidrs(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.Deny.String() == b.Deny.String() }}
	maxPerSourceKey = key[*Listener]{name: "max_per_source",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.maxPerSource = f.Val.Pos
			l.MaxPerSource = d.count(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.MaxPerSource == b.MaxPerSource }}
	rateKey = key[*Listener]{name: "rate",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.rate = f.Val.Pos
			l.Rate = d.number(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.Rate == b.Rate }}
	burstKey = key[*Listener]{name: "burst",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.burst = f.Val.Pos
			l.Burst = d.count(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.Burst == b.Burst }}
	accessLogKey = key[*Listener]{name: "access_log",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.accessLog = f.Val.Pos
			l.AccessLog = d.bool(what, f.Val)
		},
		same: func(a, b *Listener) bool { return a.AccessLog == b.AccessLog }}
	udpAmplificationKey = key[*Listener]{name: "udp_amplification",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.edge.udpAmp = f.Val.Pos
			s := d.string(what, f.Val)
			if f.Val.Kind != kindString {
				return
			}
			if !oneOf(s, amplificationChoices...) {
				d.errs.add(f.Val.Pos, "%s: unknown setting %q (want %s)", what, s, orList(amplificationChoices))
				return
			}
			l.UDPAmplification = s == "allow"
		},
		same: func(a, b *Listener) bool { return a.UDPAmplification == b.UDPAmplification }}
)

// accessLogTopKey is the top-level access_log: the default of every stream
// listener that does not set its own.
var accessLogTopKey = key[*Config]{name: "access_log",
	decode: func(d *decoder, c *Config, f *field, what string) { c.AccessLog = d.bool(what, f.Val) },
	same:   func(a, b *Config) bool { return a.AccessLog == b.AccessLog }}

// Limits are the listener's per-source limits.
func (l Listener) Limits() access.Limits {
	return access.Limits{MaxPerSource: l.MaxPerSource, Rate: l.Rate, Burst: l.Burst}
}

// cidrs decodes a list of CIDRs (or bare addresses) with access.ParseSet;
// an error names the entry at its own position.
func (d *decoder) cidrs(what string, v *value) *access.Set {
	if v.Kind != kindList {
		d.errs.add(v.Pos, "%s: want a list of CIDRs, got %s", what, v.Describe())
		return nil
	}
	list := make([]string, 0, len(v.List))
	ok := true
	for _, item := range v.List {
		if item.Kind != kindString {
			if item.Kind != kindInvalid {
				d.errs.add(item.Pos, "%s: want a CIDR string, got %s", what, item.Describe())
			}
			ok = false
			continue
		}
		if _, err := access.ParseSet([]string{item.Str}); err != nil {
			// ParseSet names the entry by its index in the list it was
			// given; here the position says which it is.
			_, msg, _ := strings.Cut(err.Error(), ": ")
			d.errs.add(item.Pos, "%s: %q: %s", what, item.Str, msg)
			ok = false
			continue
		}
		list = append(list, item.Str)
	}
	if !ok {
		return nil
	}
	s, err := access.ParseSet(list)
	if err != nil { // every entry parsed alone
		d.errs.add(v.Pos, "%s: %v", what, err)
		return nil
	}
	return s
}

// number decodes a finite non-negative number.
func (d *decoder) number(what string, v *value) float64 {
	if v.Kind != kindNumber || v.Num == nil {
		d.errs.add(v.Pos, "%s: want a number, got %s", what, v.Describe())
		return 0
	}
	f, _ := v.Num.Float64()
	if math.IsInf(f, 0) || f < 0 {
		d.errs.add(v.Pos, "%s: want a non-negative number, got %s", what, v.Describe())
		return 0
	}
	return f
}

// edge checks a decoded listener's edge keys against its network, and the
// per-source limits with access.Limits.Validate. The global access_log
// applies to stream listeners that do not set their own.
func (d *decoder) edge(c *Config, l *Listener, m listenerMeta) {
	e := m.edge
	if !m.addrOK {
		return
	}
	network := l.Addr.Network()
	if network == "unix" {
		// Unix peers have no address: nothing to allow, deny, count or
		// trust. An error rather than a warning, so that a listener never
		// runs believing it is guarded when it is not.
		for _, k := range []struct {
			name string
			pos  Pos
		}{{"proxy_protocol", e.proxy}, {"allow", e.allow}, {"deny", e.deny},
			{"max_per_source", e.maxPerSource}, {"rate", e.rate}, {"burst", e.burst}} {
			if k.pos != (Pos{}) {
				d.errs.add(k.pos, "%s: %s does not apply to a unix listener: its peers have no address", m.ctx, k.name)
			}
		}
	}
	if network == "udp" {
		if e.maxPerSource != (Pos{}) {
			d.errs.add(e.maxPerSource, "%s: max_per_source counts live connections; a udp listener has none (rate and burst limit datagrams per source)", m.ctx)
		}
		if e.accessLog != (Pos{}) && l.AccessLog {
			d.errs.add(e.accessLog, "%s: access_log logs closed connections; a udp listener has none", m.ctx)
		}
		l.AccessLog = false
	} else {
		if e.udpAmp != (Pos{}) {
			d.errs.add(e.udpAmp, "%s: udp_amplification applies to udp listeners only", m.ctx)
		}
		if e.accessLog == (Pos{}) {
			l.AccessLog = c.AccessLog
		}
	}
	if err := l.Limits().Validate(); err != nil {
		pos := e.rate
		switch {
		case strings.HasPrefix(err.Error(), "max_per_source"):
			pos = e.maxPerSource
		case strings.HasPrefix(err.Error(), "burst"):
			pos = e.burst
		}
		d.errs.add(pos, "%s: %v", m.ctx, err)
	}
}
