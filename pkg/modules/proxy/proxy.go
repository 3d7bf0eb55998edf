// Package proxy is netd's TCP proxy module: it forwards each accepted
// connection to one of its upstreams (tcp:// or unix://), both ways, with
// half-close carried across and backpressure in both directions. Dialing
// happens on the event loop, non-blocking; a proxied connection is two
// loop connections and no goroutine.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/pkg/modules/api"
)

// Balance modes.
const (
	RoundRobin = "round_robin" // each upstream in turn; the default
	LeastConn  = "least_conn"  // the upstream with the fewest connections
)

// Defaults of the options.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultFailTimeout    = 10 * time.Second
)

// Flow-control bounds. A side stops being read once the other side holds
// more than HighWater bytes it could not send yet, and is read again once
// that has drained (OnWritable). Reads are at most 64 KiB, so a direction
// holds at most HighWater plus one read.
const HighWater = 256 << 10

// Options are the proxy module's options.
type Options struct {
	Upstreams      []string      `option:"upstreams"`
	Balance        string        `option:"balance"`
	ConnectTimeout time.Duration `option:"connect_timeout"`
	FailTimeout    time.Duration `option:"fail_timeout"`
}

// upstream is one configured upstream and what every loop knows of it.
// The module instance is shared by all loops, so its state is atomic.
type upstream struct {
	network string // "tcp" or "unix", as Loop.Dial takes it
	address string // host:port or a path
	name    string // as the config spells it, for logs
	active  atomic.Int64
	// The upstream's series of the instance's metrics.
	connectsOK, connectsFailed prometheus.Counter
	connections                prometheus.Gauge
	// downUntil is when a failed upstream may be tried again, in Unix
	// nanoseconds of the loop clock; 0 while healthy.
	downUntil atomic.Int64
}

func (u *upstream) down(now int64) bool { return u.downUntil.Load() > now }

// Proxy is one proxy instance, serving one listener.
type Proxy struct {
	upstreams      []*upstream
	leastConn      bool
	connectTimeout time.Duration
	failTimeout    time.Duration
	log            hclog.Logger

	next       atomic.Uint64 // round-robin cursor
	allDownLog api.LogLimit  // rate limit of the "no upstream" warning
	noUpstream prometheus.Counter
}

// Metric names, for the README and the tests.
const (
	MetricConnects    = "netd_proxy_upstream_connects_total"
	MetricConnections = "netd_proxy_upstream_connections"
	MetricNoUpstream  = "netd_proxy_no_upstream_total"
)

// provisionMetrics registers the instance's collectors and gives each
// upstream its series.
func (p *Proxy) provisionMetrics(r prometheus.Registerer) error {
	connects, err := api.RegisterMetric(r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricConnects,
		Help: "Connects to each upstream, by result: ok, or failed (refused, unreachable, timed out).",
	}, []string{"upstream", "result"}))
	if err != nil {
		return err
	}
	connections, err := api.RegisterMetric(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricConnections,
		Help: "Connections open or being opened to each upstream.",
	}, []string{"upstream"}))
	if err != nil {
		return err
	}
	if p.noUpstream, err = api.RegisterMetric(r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricNoUpstream,
		Help: "Clients closed because no upstream could be reached.",
	})); err != nil {
		return err
	}
	for _, u := range p.upstreams {
		u.connectsOK = connects.WithLabelValues(u.name, "ok")
		u.connectsFailed = connects.WithLabelValues(u.name, "failed")
		u.connections = connections.WithLabelValues(u.name)
	}
	return nil
}

var (
	_ api.Module        = (*Proxy)(nil)
	_ api.StreamHandler = (*Proxy)(nil)
	_ api.StreamHandler = (*pair)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "proxy",
		Description: "forwards each connection to an upstream (tcp:// or unix://), both ways, half-close carried across; round_robin or least_conn",
		New:         func() api.Module { return new(Proxy) },
	})
}

// Provision implements api.Module.
func (p *Proxy) Provision(s api.Setup) error {
	opts := Options{Balance: RoundRobin, ConnectTimeout: DefaultConnectTimeout, FailTimeout: DefaultFailTimeout}
	if err := s.Options.Decode(&opts); err != nil {
		return err
	}
	if len(opts.Upstreams) == 0 {
		return s.Options.Errorf("upstreams", "a proxy needs at least one upstream (tcp://host:port or unix:///path)")
	}
	p.upstreams = p.upstreams[:0]
	for i, a := range opts.Upstreams {
		u, err := parseUpstream(a)
		if err != nil {
			return s.Options.Errorf("upstreams", "upstreams[%d]: %v", i, err)
		}
		if s.IsOwnAddress(u.network, u.address) {
			return s.Options.Errorf("upstreams", "upstreams[%d]: %q is this listener's own address (%s): every connection would open another", i, a, s.Address)
		}
		p.upstreams = append(p.upstreams, u)
	}
	switch opts.Balance {
	case RoundRobin, LeastConn:
	default:
		return s.Options.Errorf("balance", "balance must be %q or %q, not %q", RoundRobin, LeastConn, opts.Balance)
	}
	if opts.ConnectTimeout < 0 {
		return s.Options.Errorf("connect_timeout", "connect_timeout must not be negative")
	}
	if opts.FailTimeout < 0 {
		return s.Options.Errorf("fail_timeout", "fail_timeout must not be negative")
	}
	p.leastConn = opts.Balance == LeastConn
	p.connectTimeout = opts.ConnectTimeout
	p.failTimeout = opts.FailTimeout
	p.log = s.Logger
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}
	return p.provisionMetrics(s.Metrics)
}

// parseUpstream checks one upstream address: tcp://IP:port,
// tcp://localhost:port or unix:///absolute/path. Names are not resolved:
// the loop dials without blocking, and a DNS lookup would block.
func parseUpstream(a string) (*upstream, error) {
	scheme, rest, ok := strings.Cut(a, "://")
	if !ok {
		return nil, fmt.Errorf("%q: want tcp://host:port or unix:///path", a)
	}
	u := &upstream{name: a}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("%q: a unix socket path must be absolute (unix:///path)", a)
		}
		u.network, u.address = "unix", rest
		return u, nil
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%q: unsupported scheme %q; want tcp:// or unix://", a, scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return nil, fmt.Errorf("%q: want tcp://host:port", a)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("%q: bad port %q", a, port)
	}
	if host != "localhost" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("%q: the host must be an IP address or localhost (netd does not resolve names)", a)
		}
		ip = ip.Unmap()
		switch {
		case ip.IsUnspecified():
			return nil, fmt.Errorf("%q: cannot connect to the unspecified address", a)
		case scheme == "tcp4" && !ip.Is4(), scheme == "tcp6" && ip.Is4():
			return nil, fmt.Errorf("%q: not an %s address", a, scheme)
		}
	}
	u.network, u.address = scheme, rest
	return u, nil
}

// OnAccept implements api.StreamHandler: the client is not read until its
// upstream is connected, so that nothing it sends is lost to an upstream
// that fails.
func (p *Proxy) OnAccept(c api.Conn) {
	pr := &pair{p: p, client: c, tried: make([]bool, len(p.upstreams))}
	c.SetContext(pr)
	c.PauseReading()
	pr.dialNext()
}

// OnReadable implements api.StreamHandler for the client side.
func (p *Proxy) OnReadable(c api.Conn) {
	if pr, ok := c.Context().(*pair); ok {
		pr.fromClient()
	}
}

// OnWritable implements api.StreamHandler: the client took what was
// queued for it, so the upstream may be read again.
func (p *Proxy) OnWritable(c api.Conn) {
	if pr, ok := c.Context().(*pair); ok {
		pr.clientDrained()
	}
}

// OnClose implements api.StreamHandler for the client side.
func (p *Proxy) OnClose(c api.Conn, reason api.Reason, err error) {
	if pr, ok := c.Context().(*pair); ok {
		pr.clientClosed(reason, err)
	}
}

// pick chooses the next upstream for a connection that has tried those
// marked in tried: a healthy one if any is left (round-robin, or the
// least busy), else one that failed lately, since trying it beats refusing
// the client. It returns -1 when every upstream has been tried.
func (p *Proxy) pick(tried []bool, now int64) int {
	n := len(p.upstreams)
	start := int((p.next.Add(1) - 1) % uint64(n))
	best, bestDown := -1, -1
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if tried[i] {
			continue
		}
		u := p.upstreams[i]
		if u.down(now) {
			if bestDown < 0 || (p.leastConn && u.active.Load() < p.upstreams[bestDown].active.Load()) {
				bestDown = i
			}
			continue
		}
		if !p.leastConn {
			return i
		}
		if best < 0 || u.active.Load() < p.upstreams[best].active.Load() {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	return bestDown
}

// markDown records a failed connect to u.
func (p *Proxy) markDown(u *upstream, now int64, err error) {
	u.connectsFailed.Inc()
	if p.failTimeout <= 0 {
		return
	}
	was := u.downUntil.Swap(now + int64(p.failTimeout))
	if was <= now {
		p.log.Warn("upstream failed; skipping it for fail_timeout", "upstream", u.name, "error", err, "fail_timeout", p.failTimeout)
	}
}

// markUp records a successful connect to u.
func (p *Proxy) markUp(u *upstream) {
	u.connectsOK.Inc()
	if u.downUntil.Swap(0) != 0 {
		p.log.Info("upstream is back", "upstream", u.name)
	}
}

// pair is one proxied connection: the client and its upstream, on one
// loop. It is the upstream side's handler; the Proxy, through the
// client's Context, is the client side's.
type pair struct {
	p        *Proxy
	client   api.Conn
	upstream api.Conn // nil until dialed, and between attempts
	up       *upstream
	tried    []bool

	connected      bool
	clientGone     bool // the client's OnClose ran
	upstreamGone   bool // the current upstream's OnClose ran
	clientEOF      bool // the client half-closed, and the upstream was told
	upstreamEOF    bool // the upstream half-closed, and the client was told
	clientPaused   bool // client not read: its upstream holds too much
	upstreamPaused bool // upstream not read: the client holds too much

	lastErr error // of the last failed connect
}

// dialNext dials the next upstream, or gives up on the client when every
// upstream failed.
func (pr *pair) dialNext() {
	p := pr.p
	loop := pr.client.Loop()
	for {
		now := loop.Now().UnixNano()
		i := p.pick(pr.tried, now)
		if i < 0 {
			break
		}
		pr.tried[i] = true
		u := p.upstreams[i]
		pr.up, pr.upstreamGone = u, false
		u.active.Add(1)
		u.connections.Inc()
		c, err := loop.Dial(u.network, u.address, p.connectTimeout, pr)
		if err == nil {
			pr.upstream = c
			return
		}
		u.active.Add(-1)
		u.connections.Dec()
		pr.up = nil
		p.markDown(u, now, err)
		pr.lastErr = err
	}
	if pr.lastErr == nil {
		pr.lastErr = errors.New("no upstream answered")
	}
	pr.giveUp(pr.lastErr)
}

// giveUp closes a client for which no upstream could be reached.
func (pr *pair) giveUp(err error) {
	p := pr.p
	p.noUpstream.Inc()
	if p.allDownLog.Allow(pr.client.Loop().Now()) {
		p.log.Warn("no upstream could be reached; closing the client", "remote", remote(pr.client), "upstreams", len(p.upstreams), "error", err)
	}
	pr.client.CloseFor(api.ReasonError, fmt.Errorf("proxy: no upstream: %w", err))
}

// OnAccept implements api.StreamHandler for the upstream: it connected.
func (pr *pair) OnAccept(u api.Conn) {
	if u != pr.upstream || pr.clientGone {
		u.Abort(api.ReasonDone, nil)
		return
	}
	pr.connected = true
	pr.p.markUp(pr.up)
	pr.client.ResumeReading()
}

// OnReadable implements api.StreamHandler for the upstream.
func (pr *pair) OnReadable(u api.Conn) {
	if u != pr.upstream {
		return
	}
	if pr.forward(u, pr.client) {
		pr.upstreamPaused = true
	}
	if u.InputClosed() && !pr.upstreamEOF {
		pr.upstreamEOF = true
		pr.halfClose(pr.client)
	}
}

// OnWritable implements api.StreamHandler: the upstream took what was
// queued for it, so the client may be read again.
func (pr *pair) OnWritable(u api.Conn) {
	if u == pr.upstream && pr.clientPaused && !pr.clientGone {
		pr.clientPaused = false
		pr.client.ResumeReading()
	}
}

// OnClose implements api.StreamHandler for the upstream.
func (pr *pair) OnClose(u api.Conn, reason api.Reason, err error) {
	if u != pr.upstream {
		return
	}
	pr.upstreamGone = true
	pr.up.active.Add(-1)
	pr.up.connections.Dec()
	if pr.clientGone {
		return
	}
	if !pr.connected {
		// The connect failed or timed out: the next upstream, if any.
		pr.p.markDown(pr.up, pr.client.Loop().Now().UnixNano(), err)
		pr.p.log.Debug("upstream connect failed", "upstream", pr.up.name, "error", err)
		pr.upstream, pr.up, pr.lastErr = nil, nil, err
		pr.dialNext()
		return
	}
	if reason == api.ReasonError {
		// A reset on one side is a reset on the other.
		pr.client.Abort(api.ReasonError, err)
		return
	}
	// The upstream closed (or timed out idle): what it sent is already
	// queued for the client, which is closed once that is flushed.
	_ = pr.client.Close()
}

// fromClient forwards what the client sent, and its half-close.
func (pr *pair) fromClient() {
	c := pr.client
	if !pr.connected || pr.upstreamGone {
		// The client is not read before its upstream connects, except
		// when the loop reads what is left of a client that has gone
		// altogether (a unix peer's close); and after the upstream went,
		// the client is closing. Either way nobody is left to take it.
		c.Consume(len(c.Inbound()))
		return
	}
	if pr.forward(c, pr.upstream) {
		pr.clientPaused = true
	}
	if c.InputClosed() && !pr.clientEOF {
		pr.clientEOF = true
		pr.halfClose(pr.upstream)
	}
}

// clientDrained resumes reading the upstream once the client caught up.
func (pr *pair) clientDrained() {
	if pr.upstreamPaused && pr.upstream != nil && !pr.upstreamGone {
		pr.upstreamPaused = false
		pr.upstream.ResumeReading()
	}
}

// forward writes what from holds to to and reports whether from was
// paused because to holds too much. A write to a closing side fails: the
// bytes are dropped, as nobody is left to read them.
func (pr *pair) forward(from, to api.Conn) (paused bool) {
	in := from.Inbound()
	if len(in) == 0 {
		return false
	}
	_, _ = to.Write(in)
	from.Consume(len(in))
	if to.Buffered() > HighWater {
		from.PauseReading()
		return true
	}
	return false
}

// halfClose carries an end-of-file to to, the other side: it half-closes
// to once what it holds is flushed, or, when the other direction has
// ended too, closes both sides (each flushes first). The upstream is
// closed before the client, so that a client that sees its end-of-file
// and connects again finds the upstream's count already lowered.
func (pr *pair) halfClose(to api.Conn) {
	if !pr.clientEOF || !pr.upstreamEOF {
		_ = to.CloseWrite()
		return
	}
	_ = pr.upstream.Close()
	_ = pr.client.Close()
}

// clientClosed ends the pair when the client's connection is gone.
func (pr *pair) clientClosed(reason api.Reason, err error) {
	pr.clientGone = true
	u := pr.upstream
	if u == nil || pr.upstreamGone {
		return
	}
	if !pr.connected || reason == api.ReasonError {
		// A reset client resets its upstream; a dial in progress is
		// abandoned.
		u.Abort(api.ReasonError, err)
		return
	}
	// Otherwise what the client sent is delivered, then the upstream is
	// closed.
	_ = u.Close()
}

// remote names the peer for the log.
func remote(c api.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}
