// Package proxy is netd's TCP proxy module: it forwards each accepted
// connection to one of its upstreams (tcp:// or unix://), both ways, with
// half-close carried across and backpressure in both directions. Dialing
// happens on the event loop, non-blocking; a proxied connection is two
// loop connections and no goroutine.
package proxy

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/pkg/address"
	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/internal/relay"
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

// Options are the proxy module's options.
type Options struct {
	Upstreams      []string      `option:"upstreams"`
	Balance        string        `option:"balance"`
	ConnectTimeout time.Duration `option:"connect_timeout"`
	FailTimeout    time.Duration `option:"fail_timeout"`
	SendProxy      string        `option:"send_proxy"` // "", v1 or v2 (sendproxy.go)
}

// upstream is one configured upstream and what every loop knows of it.
// The module instance is shared by all loops, so its state is atomic.
type upstream struct {
	network string // tcp, tcp4, tcp6 or unix, as Loop.Dial takes it
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
	sendProxy      int // PROXY header version to send upstream; 0 none
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
	var err error
	if p.sendProxy, err = parseSendProxy(opts.SendProxy); err != nil {
		return s.Options.Errorf("send_proxy", "%v", err)
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

// parseUpstream checks one upstream address by address.ParseDial, the
// rules Loop.Dial applies: tcp://IP:port, tcp://localhost:port or
// unix:///absolute/path. Names are not resolved: the loop dials without
// blocking, and a DNS lookup would block.
func parseUpstream(s string) (*upstream, error) {
	a, err := address.ParseDial(s)
	if err != nil {
		return nil, err
	}
	u := &upstream{name: s, network: a.Scheme, address: a.Host}
	if a.Scheme == "unix" {
		u.address = a.Path
	}
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

	connected    bool
	clientGone   bool            // the client's OnClose ran
	upstreamGone bool            // the current upstream's OnClose ran
	toUpstream   relay.Direction // client to upstream
	toClient     relay.Direction // upstream to client

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
		if err == nil && p.sendProxy > 0 {
			err = pr.sendHeader(c)
		}
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
		p.log.Warn("no upstream could be reached; closing the client", "remote", relay.Remote(pr.client), "upstreams", len(p.upstreams), "error", err)
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
	if pr.toClient.Forward(u, pr.client) {
		pr.halfClose(pr.client)
	}
}

// OnWritable implements api.StreamHandler: the upstream took what was
// queued for it, so the client may be read again.
func (pr *pair) OnWritable(u api.Conn) {
	if u == pr.upstream && !pr.clientGone {
		pr.toUpstream.Resume(pr.client)
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
	if pr.toUpstream.Forward(c, pr.upstream) {
		pr.halfClose(pr.upstream)
	}
}

// clientDrained resumes reading the upstream once the client caught up.
func (pr *pair) clientDrained() {
	if pr.upstream != nil && !pr.upstreamGone {
		pr.toClient.Resume(pr.upstream)
	}
}

// halfClose carries an end-of-file to to, the other side: it half-closes
// to once what it holds is flushed, or, when the other direction has
// ended too, closes both sides (each flushes first). The upstream is
// closed before the client, so that a client that sees its end-of-file
// and connects again finds the upstream's count already lowered.
func (pr *pair) halfClose(to api.Conn) {
	if !pr.toUpstream.Ended() || !pr.toClient.Ended() {
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
