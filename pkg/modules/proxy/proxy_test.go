package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/proxy"
)

// newProxy provisions a proxy with the given options.
func newProxy(t *testing.T, options string) *proxy.Proxy {
	t.Helper()
	p := new(proxy.Proxy)
	if err := apitest.Provision(t, p, "tcp", options); err != nil {
		t.Fatalf("Provision(%q): %v", options, err)
	}
	return p
}

const twoUpstreams = "upstreams: [tcp://127.0.0.1:7001, unix:///run/b.sock]"

// accept connects a client to p on l and returns it with its dial.
func accept(t *testing.T, p *proxy.Proxy, l *apitest.Loop, opts ...apitest.Option) (*apitest.Conn, *apitest.Dial) {
	t.Helper()
	n := len(l.Dials())
	c := apitest.NewConn(p, append([]apitest.Option{apitest.WithT(t), apitest.WithLoop(l)}, opts...)...)
	d := l.Dials()
	if len(d) != n+1 {
		t.Fatalf("accepting a client dialed %d upstreams, want 1", len(d)-n)
	}
	return c, d[n]
}

// connected accepts a client and connects its upstream.
func connected(t *testing.T, p *proxy.Proxy, l *apitest.Loop, opts ...apitest.Option) (*apitest.Conn, *apitest.Dial) {
	t.Helper()
	c, d := accept(t, p, l, opts...)
	d.Connect()
	return c, d
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("proxy")
	if !ok {
		t.Fatal("proxy is not registered")
	}
	if _, ok := info.New().(*proxy.Proxy); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		yaml string
		want string // "" for success, else a substring of the error
	}{
		{"upstreams: [tcp://127.0.0.1:80]", ""},
		{"upstreams: [tcp://localhost:80, \"tcp://[::1]:81\", unix:///run/app.sock]", ""},
		{"upstreams: [tcp://LOCALHOST:80, tcp6://LocalHost:80]", ""},
		{"upstreams: [tcp4://127.0.0.1:80, \"tcp6://[::1]:80\"]", ""},
		{"upstreams: [tcp://127.0.0.1:80]\nbalance: least_conn\nconnect_timeout: 250ms\nfail_timeout: 0s", ""},
		{"", "options.yaml:1:1: option upstreams: a proxy needs at least one upstream"},
		{"upstreams: []", "options.yaml:1:12: option upstreams: a proxy needs at least one upstream"},
		{"upstreams: tcp://127.0.0.1:80", "options.yaml:1:12: option upstreams: want a list of strings"},
		{"upstreams: [tcp://127.0.0.1:80, 127.0.0.1:81]", `option upstreams: upstreams[1]: address "127.0.0.1:81": missing scheme, as in tcp://127.0.0.1:8888 (tcp, tcp4, tcp6 or unix)`},
		{"upstreams: [udp://127.0.0.1:53]", `address "udp://127.0.0.1:53": cannot connect to a udp:// address`},
		{"upstreams: [tcp://example.com:80]", `host "example.com" is not an IP address or localhost`},
		{"upstreams: [tcp://127.0.0.1:0]", "cannot connect to port 0"},
		{"upstreams: [tcp://127.0.0.1:99999]", "port 99999 is out of range (1..65535)"},
		{"upstreams: [tcp://127.0.0.1]", `address "tcp://127.0.0.1": missing port`},
		{"upstreams: [tcp://0.0.0.0:80]", "cannot connect to the unspecified address 0.0.0.0"},
		{"upstreams: [\"tcp4://[::1]:80\"]", "tcp4 wants an IPv4 host, got ::1"},
		{"upstreams: [unix://run/app.sock]", `socket path "run/app.sock" is not absolute`},
		{"upstreams: [tcp://127.0.0.1:80]\nbalance: random", `options.yaml:2:10: option balance: balance must be "round_robin" or "least_conn", not "random"`},
		{"upstreams: [tcp://127.0.0.1:80]\nconnect_timeout: -1s", "options.yaml:2:18: option connect_timeout: connect_timeout must not be negative"},
		{"upstreams: [tcp://127.0.0.1:80]\nfail_timeout: -1s", "options.yaml:2:15"},
		{"upstreams: [tcp://127.0.0.1:80]\nconnect_timeout: 5", "options.yaml:2:18"},
		{"upstreams: [tcp://127.0.0.1:80]\nbogus: 1", `options.yaml:2:1: unknown option "bogus"`},
	}
	for _, tt := range tests {
		err := apitest.Provision(t, new(proxy.Proxy), "tcp", tt.yaml)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestDialsWithTheOptions(t *testing.T) {
	p := newProxy(t, "upstreams: [tcp://127.0.0.1:7001, unix:///run/b.sock, \"tcp6://[::1]:7003\"]\nconnect_timeout: 2s")
	l := apitest.NewLoop(apitest.WithT(t))
	want := []string{"tcp 127.0.0.1:7001", "unix /run/b.sock", "tcp6 [::1]:7003", "tcp 127.0.0.1:7001"}
	for i, w := range want {
		_, d := accept(t, p, l)
		if got := d.Network + " " + d.Address; got != w || d.Timeout != 2*time.Second {
			t.Errorf("client %d dialed %s (timeout %v), want %s (2s)", i, got, d.Timeout, w)
		}
	}
}

func TestForwardsBothWays(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := accept(t, p, l)
	if !c.Paused() {
		t.Fatal("the client is read before its upstream connects")
	}
	d.Connect()
	if c.Paused() {
		t.Fatal("the client is still paused after the upstream connected")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var up, down []byte
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.IntN(3000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			up = append(up, b...)
			c.FeedSplit(b)
		} else {
			down = append(down, b...)
			d.FeedSplit(b)
		}
	}
	if !bytes.Equal(d.Written(), up) {
		t.Errorf("upstream got %d bytes, want %d, byte for byte", len(d.Written()), len(up))
	}
	if !bytes.Equal(c.Written(), down) {
		t.Errorf("client got %d bytes, want %d, byte for byte", len(c.Written()), len(down))
	}
	if len(c.Unconsumed())+len(d.Unconsumed()) != 0 {
		t.Error("input left unconsumed")
	}
}

func TestHalfCloseCarriedBothWays(t *testing.T) {
	t.Run("client first", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l)
		c.FeedString("request")
		c.FeedEOF()
		if !d.WriteClosed() || d.Closing() || d.WrittenString() != "request" {
			t.Fatalf("upstream: WriteClosed %v Closing %v Written %q", d.WriteClosed(), d.Closing(), d.WrittenString())
		}
		// The response still flows after the client's half-close.
		d.FeedString("response")
		if c.WrittenString() != "response" || c.Closing() {
			t.Fatalf("client: Written %q Closing %v", c.WrittenString(), c.Closing())
		}
		d.FeedEOF()
		if !c.Closed() || !d.Closed() || c.Aborted() || d.Aborted() || c.Reason() != api.ReasonClient {
			t.Fatalf("both done: client Closed %v Aborted %v Reason %q; upstream Closed %v Aborted %v",
				c.Closed(), c.Aborted(), c.Reason(), d.Closed(), d.Aborted())
		}
		if a := p.Active(); a[0]+a[1] != 0 {
			t.Errorf("active = %v after the pair ended", a)
		}
	})
	t.Run("upstream first", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l)
		d.FeedString("banner\n")
		d.FeedEOF()
		if c.WrittenString() != "banner\n" || !c.WriteClosed() || c.Closing() {
			t.Fatalf("client: Written %q WriteClosed %v Closing %v", c.WrittenString(), c.WriteClosed(), c.Closing())
		}
		c.FeedString("still talking")
		c.FeedEOF()
		if d.WrittenString() != "still talking" || !c.Closed() || !d.Closed() || c.Aborted() {
			t.Fatalf("upstream got %q; Closed %v %v", d.WrittenString(), c.Closed(), d.Closed())
		}
	})
	t.Run("queued output is flushed before the half-close", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l, apitest.WithWritable(4))
		d.FeedString("0123456789")
		d.FeedEOF()
		if c.WrittenString() != "0123" || c.Buffered() != 6 {
			t.Fatalf("Written %q Buffered %d", c.WrittenString(), c.Buffered())
		}
		c.FeedEOF()
		c.Drain(-1)
		if c.WrittenString() != "0123456789" || !c.Closed() || c.Aborted() {
			t.Fatalf("Written %q Closed %v Aborted %v", c.WrittenString(), c.Closed(), c.Aborted())
		}
	})
}

func TestBackpressureBothWays(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	t.Run("slow upstream pauses the client", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l)
		d.SetWritable(0) // the upstream takes nothing
		fed := 0
		for !c.Paused() && fed < 100 {
			c.Feed(chunk)
			fed++
		}
		if !c.Paused() || d.Buffered() <= proxy.HighWater || d.Buffered() > proxy.HighWater+len(chunk) {
			t.Fatalf("client Paused %v with %d bytes queued for the upstream (bound %d)", c.Paused(), d.Buffered(), proxy.HighWater)
		}
		c.Feed(chunk) // waits in the kernel
		c.Feed(chunk)
		if d.Buffered() > proxy.HighWater+len(chunk) {
			t.Fatalf("read while paused: %d queued", d.Buffered())
		}
		d.Drain(-1)
		if c.Paused() {
			t.Fatal("client still paused after the upstream drained")
		}
		d.Drain(-1)
		if got := len(d.Written()); got != (fed+2)*len(chunk) {
			t.Fatalf("upstream got %d bytes, want %d", got, (fed+2)*len(chunk))
		}
	})
	t.Run("slow client pauses the upstream", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l, apitest.WithWritable(0))
		for i := 0; i < 5; i++ {
			d.Feed(chunk)
		}
		if !d.Paused() || c.Buffered() > proxy.HighWater+len(chunk) {
			t.Fatalf("upstream Paused %v with %d bytes queued for the client", d.Paused(), c.Buffered())
		}
		c.Drain(-1)
		if d.Paused() {
			t.Fatal("upstream still paused after the client caught up")
		}
		c.Drain(-1)
		if got := len(c.Written()); got != 5*len(chunk) {
			t.Fatalf("client got %d bytes", got)
		}
	})
}

func TestResetCarried(t *testing.T) {
	reset := fmt.Errorf("read: %w", syscall.ECONNRESET)
	t.Run("client resets", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l, apitest.WithWritable(0))
		d.SetWritable(0)
		c.FeedString("unsent")
		c.Terminate(api.ReasonError, reset)
		if !d.Closed() || !d.Aborted() || d.Reason() != api.ReasonError || !errors.Is(d.Err(), syscall.ECONNRESET) {
			t.Fatalf("upstream Closed %v Aborted %v Reason %q Err %v", d.Closed(), d.Aborted(), d.Reason(), d.Err())
		}
	})
	t.Run("upstream resets", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := connected(t, p, l, apitest.WithWritable(0))
		d.FeedString("unsent")
		d.Terminate(api.ReasonError, reset)
		if !c.Closed() || !c.Aborted() || c.Reason() != api.ReasonError {
			t.Fatalf("client Closed %v Aborted %v Reason %q", c.Closed(), c.Aborted(), c.Reason())
		}
	})
	t.Run("client resets while connecting", func(t *testing.T) {
		p := newProxy(t, twoUpstreams)
		l := apitest.NewLoop(apitest.WithT(t))
		c, d := accept(t, p, l)
		c.Terminate(api.ReasonError, reset)
		if !d.Closed() || d.Connecting() {
			t.Fatal("the dial outlived its client")
		}
		if a := p.Active(); a[0]+a[1] != 0 {
			t.Errorf("active = %v", a)
		}
		if len(l.Dials()) != 1 {
			t.Error("dialed again for a client that is gone")
		}
	})
}

func TestUpstreamCloseFlushesToClient(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := connected(t, p, l, apitest.WithWritable(2))
	d.FeedString("last words")
	d.Terminate(api.ReasonClient, nil) // the loop saw the upstream hang up
	if c.Closed() || !c.Closing() {
		t.Fatal("client closed before its output was flushed")
	}
	c.Drain(-1)
	if c.WrittenString() != "last words" || !c.Closed() || c.Aborted() {
		t.Fatalf("client Written %q Closed %v Aborted %v", c.WrittenString(), c.Closed(), c.Aborted())
	}
}

func TestClientGoneClosesUpstreamGracefully(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := connected(t, p, l)
	d.SetWritable(3)
	c.FeedString("request")
	c.Terminate(api.ReasonIdleTimeout, nil)
	if d.Closed() || !d.Closing() {
		t.Fatal("the upstream must get what the client sent before it is closed")
	}
	d.Drain(-1)
	if d.WrittenString() != "request" || !d.Closed() || d.Aborted() {
		t.Fatalf("upstream Written %q Closed %v Aborted %v", d.WrittenString(), d.Closed(), d.Aborted())
	}
}

func TestFailoverToTheNextUpstream(t *testing.T) {
	logger := apitest.NewLogger(t)
	p := new(proxy.Proxy)
	err := p.Provision(api.Setup{Listener: "front", Network: "tcp", Options: apitest.Options(t, "upstreams: [tcp://127.0.0.1:7001, tcp://127.0.0.1:7002, tcp://127.0.0.1:7003]\nfail_timeout: 10s"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := accept(t, p, l)
	if d.Address != "127.0.0.1:7001" {
		t.Fatalf("first dial to %s", d.Address)
	}
	d.Fail(nil)
	d2 := l.Dials()[1]
	if d2.Address != "127.0.0.1:7002" || c.Closing() {
		t.Fatalf("after a refused connect: dialed %s, client closing %v", d2.Address, c.Closing())
	}
	d2.Fail(api.ErrConnectTimeout)
	d3 := l.Dials()[2]
	d3.Connect()
	c.FeedString("hello")
	if d3.WrittenString() != "hello" {
		t.Fatalf("third upstream got %q", d3.WrittenString())
	}
	if p.FailedConnects() != 2 || len(logger.Find(hclog.Warn, "upstream failed")) != 2 {
		t.Errorf("failed connects %d, warnings:\n%s", p.FailedConnects(), logger)
	}

	// The two failed upstreams are skipped for fail_timeout...
	for i := 0; i < 3; i++ {
		_, d := accept(t, p, l)
		if d.Address != "127.0.0.1:7003" {
			t.Fatalf("while 7001 and 7002 are down, dialed %s", d.Address)
		}
		d.Connect()
	}
	// ...and tried again after it.
	l.Advance(10 * time.Second)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		_, d := accept(t, p, l)
		seen[d.Address] = true
		d.Connect()
	}
	if len(seen) != 3 {
		t.Errorf("after fail_timeout dialed %v, want all three", seen)
	}
	if len(logger.Find(hclog.Info, "upstream is back")) != 2 {
		t.Errorf("want two 'back' messages:\n%s", logger)
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := accept(t, p, l)
	d.Fail(nil)
	l.Dials()[1].Fail(nil)
	if !c.Closed() || c.Reason() != api.ReasonError || !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("client Closed %v Reason %q Err %v", c.Closed(), c.Reason(), c.Err())
	}
	if len(l.Dials()) != 2 {
		t.Fatalf("%d dials for one client; each upstream is tried once", len(l.Dials()))
	}
	// Both are down now, so the next client tries them anyway.
	c2, d2 := accept(t, p, l)
	d2.Connect()
	c2.FeedString("x")
	if d2.WrittenString() != "x" {
		t.Fatal("with every upstream down, the proxy must still try one")
	}
	if a := p.Active(); a[0]+a[1] != 1 {
		t.Errorf("active = %v", a)
	}
}

func TestSynchronousDialErrors(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	var tried []string
	l.SetDialError(func(network, address string) error {
		tried = append(tried, address)
		if network == "unix" {
			return syscall.ENOENT
		}
		return nil
	})
	_, d := accept(t, p, l) // round robin starts at 7001, which dials
	d.Connect()
	_, d = accept(t, p, l) // b.sock fails at once; 7001 next
	if d.Address != "127.0.0.1:7001" || fmt.Sprint(tried) != "[127.0.0.1:7001 /run/b.sock 127.0.0.1:7001]" {
		t.Fatalf("dialed %s after %v", d.Address, tried)
	}
	l.SetDialError(func(string, string) error { return syscall.EMFILE })
	c, _ := apitest.NewConn(p, apitest.WithT(t), apitest.WithLoop(l)), 0
	if !c.Closed() || !errors.Is(c.Err(), syscall.EMFILE) {
		t.Fatalf("every dial failing at once: Closed %v Err %v", c.Closed(), c.Err())
	}
}

func TestRoundRobin(t *testing.T) {
	p := newProxy(t, "upstreams: [tcp://127.0.0.1:7001, tcp://127.0.0.1:7002, tcp://127.0.0.1:7003]")
	l := apitest.NewLoop(apitest.WithT(t))
	var got []string
	for i := 0; i < 6; i++ {
		_, d := connected(t, p, l)
		got = append(got, d.Address[len(d.Address)-1:])
	}
	if strings.Join(got, "") != "123123" {
		t.Errorf("round robin order %v", got)
	}
}

func TestLeastConnChoosesTheIdleUpstream(t *testing.T) {
	p := newProxy(t, "upstreams: [tcp://127.0.0.1:7001, tcp://127.0.0.1:7002]\nbalance: least_conn")
	l := apitest.NewLoop(apitest.WithT(t))
	_, busy := connected(t, p, l) // stays open
	for i := 0; i < 5; i++ {
		c, d := connected(t, p, l)
		if d.Address == busy.Address {
			t.Fatalf("connection %d went to the busy upstream %s (active %v)", i, d.Address, p.Active())
		}
		c.FeedEOF()
		d.FeedEOF()
		if !c.Closed() {
			t.Fatal("pair not closed")
		}
	}
	// The next goes to the idle one too; then both have one more.
	_, a := connected(t, p, l)
	if a.Address == busy.Address {
		t.Errorf("went to the busy upstream; active %v", p.Active())
	}
	connected(t, p, l)
	connected(t, p, l)
	if act := p.Active(); act[0]+act[1] != 4 || act[0] != act[1] {
		t.Errorf("active %v, want the load spread", act)
	}
}

// TestDrain: when the daemon drains, the loop closes each side gracefully
// once it is quiet (the proxy has no OnDrain of its own): the client gets
// what was queued for it, the upstream what the client had sent.
func TestDrain(t *testing.T) {
	p := newProxy(t, twoUpstreams)
	l := apitest.NewLoop(apitest.WithT(t))
	c, d := connected(t, p, l, apitest.WithWritable(3))
	d.SetWritable(2)
	d.FeedString("queued")
	c.FeedString("sent")
	c.Shutdown()
	d.Shutdown()
	c.Drain(-1)
	d.Drain(-1)
	if !c.Closed() || c.Aborted() || c.WrittenString() != "queued" || c.Reason() != api.ReasonShutdown {
		t.Fatalf("client Closed %v Aborted %v Written %q Reason %q", c.Closed(), c.Aborted(), c.WrittenString(), c.Reason())
	}
	if !d.Closed() || d.Aborted() || d.WrittenString() != "sent" {
		t.Fatalf("upstream Closed %v Aborted %v Written %q", d.Closed(), d.Aborted(), d.WrittenString())
	}
	if a := p.Active(); a[0]+a[1] != 0 {
		t.Errorf("active %v", a)
	}
}

func TestNoLeaksOverManyConnections(t *testing.T) {
	p := newProxy(t, "upstreams: [tcp://127.0.0.1:7001, tcp://127.0.0.1:7002]\nbalance: least_conn")
	l := apitest.NewLoop(apitest.WithT(t))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		c, d := accept(t, p, l)
		switch rng.IntN(5) {
		case 0:
			d.Fail(nil)
			if dd := l.Dials(); dd[len(dd)-1] != d {
				dd[len(dd)-1].Connect()
			}
		case 1:
			c.Terminate(api.ReasonError, nil)
			continue
		default:
			d.Connect()
		}
		if c.Closed() {
			continue
		}
		up := l.Dials()[len(l.Dials())-1]
		c.FeedString("q")
		up.FeedString("a")
		switch rng.IntN(3) {
		case 0:
			c.FeedEOF()
			up.FeedEOF()
		case 1:
			up.Terminate(api.ReasonError, nil)
		case 2:
			c.Terminate(api.ReasonIdleTimeout, nil)
			up.FeedEOF()
		}
		if !c.Closed() || !up.Closed() {
			t.Fatalf("connection %d left open: client %v upstream %v", i, c.Closed(), up.Closed())
		}
	}
	if a := p.Active(); a[0] != 0 || a[1] != 0 {
		t.Errorf("active = %v after every connection ended", a)
	}
}

// TestMetrics: connects by upstream and result, connections open per
// upstream, and clients no upstream would take.
func TestMetrics(t *testing.T) {
	const a, b = "tcp://127.0.0.1:7001", "unix:///run/b.sock"
	setup, reg := apitest.NewSetup(t, "tcp", twoUpstreams)
	p := new(proxy.Proxy)
	if err := p.Provision(setup); err != nil {
		t.Fatal(err)
	}
	l := apitest.NewLoop(apitest.WithT(t))
	_, d := accept(t, p, l)
	d.Fail(nil) // a refuses; b takes the client
	l.Dials()[1].Connect()
	_, d = accept(t, p, l) // a is down for fail_timeout: b again
	d.Connect()
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return apitest.Metric(t, reg, name, labels...)
	}
	if got := metric(proxy.MetricConnects, "upstream", a, "result", "failed"); got != 1 {
		t.Errorf("failed connects to a = %v, want 1", got)
	}
	if got := metric(proxy.MetricConnects, "upstream", b, "result", "ok"); got != 2 {
		t.Errorf("connects to b = %v, want 2", got)
	}
	if got, got2 := metric(proxy.MetricConnections, "upstream", b), metric(proxy.MetricConnections, "upstream", a); got != 2 || got2 != 0 {
		t.Errorf("connections b=%v a=%v, want 2 and 0", got, got2)
	}
	d.Shutdown() // the upstream closes: one connection fewer
	if got := metric(proxy.MetricConnections, "upstream", b); got != 1 {
		t.Errorf("connections to b after one closed = %v, want 1", got)
	}
	l.SetDialError(func(string, string) error { return syscall.EMFILE })
	apitest.NewConn(p, apitest.WithT(t), apitest.WithLoop(l))
	if got := metric(proxy.MetricNoUpstream); got != 1 {
		t.Errorf("clients with no upstream = %v, want 1", got)
	}
}
