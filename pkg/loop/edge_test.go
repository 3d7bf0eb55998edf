package loop

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// edgeProbe is a line echo that records the address each connection and
// datagram was shown as coming from. Over udp it answers each datagram
// with answer bytes (a chargen), or echoes it when answer is 0.
type edgeProbe struct {
	lineEcho
	answer int
	mu     sync.Mutex
	seen   []string
}

func (m *edgeProbe) OnAccept(c api.Conn) { m.record(c.RemoteAddr().String()) }

func (m *edgeProbe) OnPacket(w api.PacketWriter, p []byte, from netip.AddrPort) {
	m.record(from.String())
	if m.answer == 0 {
		_ = w.WriteTo(p, from)
		return
	}
	_ = w.WriteTo(bytes.Repeat([]byte{'x'}, m.answer), from)
}

func (m *edgeProbe) record(s string) {
	m.mu.Lock()
	m.seen = append(m.seen, s)
	m.mu.Unlock()
}

func (m *edgeProbe) addrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

// v1 is a hand-built PROXY v1 line.
func v1(src, dst string) []byte {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	fam := "TCP4"
	if s.Addr().Is6() {
		fam = "TCP6"
	}
	return []byte("PROXY " + fam + " " + s.Addr().String() + " " + d.Addr().String() + " " +
		strconv.Itoa(int(s.Port())) + " " + strconv.Itoa(int(d.Port())) + "\r\n")
}

var v2sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v2 is a hand-built PROXY v2 header: command 1 PROXY (0 LOCAL), IPv4
// addresses over tcp (proto 0x11) or udp (0x12), then the TLVs as given.
func v2(cmd byte, proto byte, src, dst string, tlvs ...[]byte) []byte {
	var b bytes.Buffer
	b.Write(v2sig)
	b.WriteByte(0x20 | cmd)
	b.WriteByte(proto)
	var body bytes.Buffer
	if src != "" {
		s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
		s4, d4 := s.Addr().As4(), d.Addr().As4()
		body.Write(s4[:])
		body.Write(d4[:])
		_ = binary.Write(&body, binary.BigEndian, s.Port())
		_ = binary.Write(&body, binary.BigEndian, d.Port())
	}
	for _, t := range tlvs {
		body.Write(t)
	}
	_ = binary.Write(&b, binary.BigEndian, uint16(body.Len()))
	b.Write(body.Bytes())
	return b.Bytes()
}

// tlv is one hand-built TLV.
func tlv(typ byte, v string) []byte {
	return append([]byte{typ, byte(len(v) >> 8), byte(len(v))}, v...)
}

// dialFrom connects to l from the local address ip (any 127.0.0.0/8
// address is this host's).
func dialFrom(t *testing.T, l *Listener, ip string) net.Conn {
	t.Helper()
	_, address := testutil.SplitAddr(l.Addr())
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// expectClosed reads until the server's end-of-file or reset, and fails
// on data.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if n > 0 || err == nil || isNetTimeout(err) {
		t.Fatalf("read %q, %v: want the connection closed", b[:n], err)
	}
}

func echoes(t *testing.T, c net.Conn, prefix []byte, line string) {
	t.Helper()
	if _, err := c.Write(append(append([]byte(nil), prefix...), line...)); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != line {
		t.Fatalf("echo = %q, %v; want %q", got, err, line)
	}
}

func refused(l *Listener, r api.Reason) uint64 { return l.Stats().Refused[r] }

func waitRefused(t *testing.T, l *Listener, r api.Reason, want uint64) {
	t.Helper()
	if !testutil.PollUntil(5*time.Second, func() bool { return refused(l, r) == want }) {
		t.Fatalf("refused{%s} = %d, want %d", r, refused(l, r), want)
	}
}

func proxySpec(mode proxyproto.Mode, trusted ...string) *EdgeSpec {
	return &EdgeSpec{ProxyProtocol: &proxyproto.Policy{Mode: mode, Trusted: access.MustParseSet(trusted...), Timeout: 300 * time.Millisecond}}
}

// TestProxyHeaders: the header's source becomes RemoteAddr and the bytes
// after it reach the module unchanged, whether the header comes alone, with
// data, or in pieces; LOCAL keeps the real peer; TLVs are read past.
func TestProxyHeaders(t *testing.T) {
	tests := []struct {
		name   string
		chunks [][]byte // written in turn, a pause between
		want   string   // RemoteAddr the module sees ("" the real peer)
	}{
		{"v1", [][]byte{v1("203.0.113.9:5555", "192.0.2.1:80")}, "203.0.113.9:5555"},
		{"v1 ipv6", [][]byte{v1("[2001:db8::7]:4000", "[2001:db8::1]:80")}, "[2001:db8::7]:4000"},
		{"v1 in pieces", [][]byte{[]byte("PROXY TCP4 198.51"), []byte(".100.4 192.0.2.1 6000 80\r"), []byte("\n")}, "198.51.100.4:6000"},
		{"v2", [][]byte{v2(1, 0x11, "203.0.113.10:1234", "192.0.2.1:443")}, "203.0.113.10:1234"},
		{"v2 TLVs", [][]byte{v2(1, 0x11, "203.0.113.11:1234", "192.0.2.1:443",
			tlv(proxyproto.TypeALPN, "h2"), tlv(proxyproto.TypeAuthority, "example.com"), tlv(proxyproto.TypeNoop, "\x00\x00"))}, "203.0.113.11:1234"},
		{"v2 in pieces", func() [][]byte {
			h := v2(1, 0x11, "203.0.113.12:99", "192.0.2.1:443", tlv(proxyproto.TypeUniqueID, "abc"))
			return [][]byte{h[:5], h[5:15], h[15:]}
		}(), "203.0.113.12:99"},
		{"v2 LOCAL", [][]byte{v2(0, 0x00, "", "")}, ""},
	}
	for _, mode := range []proxyproto.Mode{proxyproto.Require, proxyproto.Optional} {
		m := &edgeProbe{}
		_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "pp", Network: "tcp", Address: "127.0.0.1:0",
			Module: m, Edge: proxySpec(mode, "127.0.0.0/8")})
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.name, func(t *testing.T) {
				c := dial(t, l)
				for i, ch := range tt.chunks {
					if i > 0 {
						time.Sleep(20 * time.Millisecond)
					}
					if _, err := c.Write(ch); err != nil {
						t.Fatal(err)
					}
				}
				echoes(t, c, nil, "hello after the header\n")
				want := tt.want
				if want == "" {
					want = c.LocalAddr().String()
				}
				seen := m.addrs()
				if got := seen[len(seen)-1]; got != want {
					t.Errorf("RemoteAddr = %s, want %s", got, want)
				}
			})
		}
		if n := refused(l, ReasonProxyProtocol); n != 0 {
			t.Errorf("%s: refused{proxy_protocol} = %d, want 0", mode, n)
		}
	}
}

// TestProxyHeaderWithData: a header and the client's first bytes in one
// segment, as HAProxy sends them.
func TestProxyHeaderWithData(t *testing.T) {
	m := &edgeProbe{}
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "pp", Network: "tcp", Address: "127.0.0.1:0",
		Module: m, Edge: proxySpec(proxyproto.Require, "127.0.0.1")})
	c := dial(t, l)
	echoes(t, c, v2(1, 0x11, "203.0.113.20:7", "192.0.2.1:80"), "together\n")
	if got := m.addrs(); len(got) != 1 || got[0] != "203.0.113.20:7" {
		t.Errorf("seen %v", got)
	}
}

// TestProxyRefusals: every way a header can fail closes the connection
// before the module sees it, counted as proxy_protocol, and leaves the
// listener serving.
func TestProxyRefusals(t *testing.T) {
	oversized := v2(1, 0x11, "203.0.113.1:1", "192.0.2.1:80")
	binary.BigEndian.PutUint16(oversized[14:16], proxyproto.MaxV2Length+1)
	tests := []struct {
		name     string
		mode     proxyproto.Mode
		trusted  string
		send     []byte
		closeOut bool // half-close after sending
	}{
		{"untrusted under require", proxyproto.Require, "127.0.0.2", v1("203.0.113.1:1", "192.0.2.1:80"), false},
		{"no header under require", proxyproto.Require, "127.0.0.1", []byte("GET / HTTP/1.0\r\n"), false},
		{"bad v1", proxyproto.Require, "127.0.0.1", []byte("PROXY TCP4 nonsense\n"), false},
		{"v1 too long", proxyproto.Optional, "127.0.0.1", []byte("PROXY TCP4 " + strings.Repeat("1", 120)), false},
		{"oversized v2", proxyproto.Optional, "127.0.0.1", oversized, false},
		{"v2 version 3", proxyproto.Optional, "127.0.0.1", append(append([]byte(nil), v2sig...), 0x31, 0x11, 0, 0), false},
		{"truncated v2, then EOF", proxyproto.Optional, "127.0.0.1", v2(1, 0x11, "203.0.113.1:1", "192.0.2.1:80")[:20], true},
		{"truncated v2, then silence", proxyproto.Require, "127.0.0.1", v2(1, 0x11, "203.0.113.1:1", "192.0.2.1:80")[:20], false},
		{"silence under require", proxyproto.Require, "127.0.0.1", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &edgeProbe{}
			_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "pp", Network: "tcp", Address: "127.0.0.1:0",
				Module: m, Edge: proxySpec(tt.mode, tt.trusted)})
			c := dial(t, l)
			if len(tt.send) > 0 {
				_, _ = c.Write(tt.send)
			}
			if tt.closeOut {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, c)
			waitRefused(t, l, ReasonProxyProtocol, 1)
			if got := m.addrs(); len(got) != 0 {
				t.Errorf("the module saw %v", got)
			}
			if n := l.Stats().Closed[api.ReasonError]; n != 0 {
				t.Errorf("closed{error} = %d: a refusal is not an error", n)
			}
			// The listener serves the next client, from a trusted proxy.
			echoes(t, dialFrom(t, l, tt.trusted), v1("203.0.113.2:2", "192.0.2.1:80"), "next\n")
		})
	}
}

// TestProxyOptionalPassesOthers: under optional, an untrusted source is
// served as itself with its bytes untouched (a forged header is data), and
// a trusted source that says nothing is served as itself once the timeout
// passes (a client that waits for the server to speak first).
func TestProxyOptionalPassesOthers(t *testing.T) {
	m := &edgeProbe{}
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "pp", Network: "tcp", Address: "127.0.0.1:0",
		Module: m, Edge: proxySpec(proxyproto.Optional, "127.0.0.2")})
	c := dialFrom(t, l, "127.0.0.1")
	forged := string(v1("203.0.113.66:1", "192.0.2.1:80"))
	echoes(t, c, nil, forged)
	if got := m.addrs(); got[0] != c.LocalAddr().String() {
		t.Errorf("untrusted source seen as %s, want itself", got[0])
	}

	quiet := dialFrom(t, l, "127.0.0.2")
	if !testutil.PollUntil(5*time.Second, func() bool { return len(m.addrs()) == 2 }) {
		t.Fatal("a trusted source that sent nothing was not served after the timeout")
	}
	echoes(t, quiet, nil, "late\n")
	if got := m.addrs()[1]; got != quiet.LocalAddr().String() {
		t.Errorf("quiet source seen as %s", got)
	}
}

// TestAccessLists: allow and deny from several source addresses of
// 127.0.0.0/8; deny wins over allow; refusals are counted and logged with
// the source.
func TestAccessLists(t *testing.T) {
	var logs testutil.SyncBuffer
	m := &edgeProbe{}
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "acl", Network: "tcp", Address: "127.0.0.1:0",
		Module: m, Logger: hostileLogger(&logs),
		Edge: &EdgeSpec{Allow: access.MustParseSet("127.0.0.0/29"), Deny: access.MustParseSet("127.0.0.3")}})
	for _, tt := range []struct {
		from string
		ok   bool
	}{{"127.0.0.1", true}, {"127.0.0.2", true}, {"127.0.0.3", false}, {"127.0.0.9", false}, {"127.0.0.7", true}} {
		c := dialFrom(t, l, tt.from)
		if tt.ok {
			echoes(t, c, nil, "from "+tt.from+"\n")
		} else {
			expectClosed(t, c)
		}
	}
	waitRefused(t, l, ReasonDenied, 2)
	if !strings.Contains(logs.String(), "remote=127.0.0.3:") || !strings.Contains(logs.String(), "reason=denied") {
		t.Errorf("no refusal line with the source:\n%s", logs.String())
	}
	if len(m.addrs()) != 3 {
		t.Errorf("the module saw %v", m.addrs())
	}
}

// TestMaxPerSource: a source at its limit is refused until one of its
// connections closes; another source is not affected.
func TestMaxPerSource(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 2}, ListenerSpec{Name: "mps", Network: "tcp", Address: "127.0.0.1:0",
		Module: &edgeProbe{}, Edge: &EdgeSpec{Limits: access.Limits{MaxPerSource: 2}}})
	a := dialFrom(t, l, "127.0.0.2")
	echoes(t, a, nil, "a\n")
	b := dialFrom(t, l, "127.0.0.2")
	echoes(t, b, nil, "b\n")
	expectClosed(t, dialFrom(t, l, "127.0.0.2"))
	waitRefused(t, l, ReasonPerSource, 1)
	echoes(t, dialFrom(t, l, "127.0.0.3"), nil, "other source\n")
	a.Close()
	if !testutil.PollUntil(5*time.Second, func() bool { return l.Stats().Active == 2 }) {
		t.Fatalf("active = %d after a close", l.Stats().Active)
	}
	echoes(t, dialFrom(t, l, "127.0.0.2"), nil, "again\n")
}

// TestRate: a source past its burst is refused until its bucket refills.
func TestRate(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "rate", Network: "tcp", Address: "127.0.0.1:0",
		Module: &edgeProbe{}, Edge: &EdgeSpec{Limits: access.Limits{Rate: 5, Burst: 2}}})
	echoes(t, dialFrom(t, l, "127.0.0.4"), nil, "1\n")
	echoes(t, dialFrom(t, l, "127.0.0.4"), nil, "2\n")
	expectClosed(t, dialFrom(t, l, "127.0.0.4"))
	waitRefused(t, l, ReasonRate, 1)
	echoes(t, dialFrom(t, l, "127.0.0.5"), nil, "another source\n")
	time.Sleep(250 * time.Millisecond) // a token every 200ms
	echoes(t, dialFrom(t, l, "127.0.0.4"), nil, "refilled\n")
}

// TestAccessAfterProxy: behind PROXY protocol, access control judges the
// address the header carries, not the proxy's.
func TestAccessAfterProxy(t *testing.T) {
	spec := proxySpec(proxyproto.Require, "127.0.0.1")
	spec.Deny = access.MustParseSet("203.0.113.0/24")
	spec.Limits = access.Limits{MaxPerSource: 1}
	m := &edgeProbe{}
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "pp-acl", Network: "tcp", Address: "127.0.0.1:0", Module: m, Edge: spec})
	denied := dial(t, l)
	_, _ = denied.Write(v1("203.0.113.5:1000", "192.0.2.1:80"))
	expectClosed(t, denied)
	waitRefused(t, l, ReasonDenied, 1)

	first := dial(t, l)
	echoes(t, first, v1("198.51.100.5:1000", "192.0.2.1:80"), "first\n")
	second := dial(t, l)
	_, _ = second.Write(v1("198.51.100.5:1001", "192.0.2.1:80"))
	expectClosed(t, second)
	waitRefused(t, l, ReasonPerSource, 1)
	// Another client behind the same proxy is another source.
	echoes(t, dial(t, l), v1("198.51.100.6:1000", "192.0.2.1:80"), "other\n")
}

// TestOverLimitCountsAsRefused: max_connections refusals count among the
// refused too, and stay counted as closed over_limit.
func TestOverLimitCountsAsRefused(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "max", Network: "tcp", Address: "127.0.0.1:0",
		Module: &edgeProbe{}, MaxConnections: 1})
	echoes(t, dial(t, l), nil, "one\n")
	expectClosed(t, dial(t, l))
	waitRefused(t, l, api.ReasonOverLimit, 1)
	if n := l.Stats().Closed[api.ReasonOverLimit]; n != 1 {
		t.Errorf("closed{over_limit} = %d, want 1", n)
	}
}

// TestAccessLog: one line per closed connection, with the client address
// the header gave, the byte counts and the reason, and none of the bytes.
func TestAccessLog(t *testing.T) {
	var logs testutil.SyncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info, JSONFormat: true})
	spec := proxySpec(proxyproto.Optional, "127.0.0.1")
	spec.AccessLog = true
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "logged", Network: "tcp", Address: "127.0.0.1:0",
		Module: &edgeProbe{}, Logger: logger, Edge: spec})
	header := v1("203.0.113.77:4321", "192.0.2.1:80")
	c := dial(t, l)
	echoes(t, c, header, "secret-payload\n")
	c.Close()
	var line map[string]any
	if !testutil.PollUntil(5*time.Second, func() bool {
		for _, s := range strings.Split(logs.String(), "\n") {
			if strings.Contains(s, `"access"`) && json.Unmarshal([]byte(s), &line) == nil {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no access line:\n%s", logs.String())
	}
	want := map[string]any{"listener": "logged", "remote": "203.0.113.77:4321", "reason": "client",
		"bytes_in": float64(len(header) + len("secret-payload\n")), "bytes_out": float64(len("secret-payload\n"))}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Errorf("no duration in %v", line)
	}
	if strings.Contains(logs.String(), "secret-payload") {
		t.Errorf("the client's bytes are in the log:\n%s", logs.String())
	}
}

// udpExchange sends d from c and returns the answer, or nil when none
// comes within wait.
func udpExchange(t *testing.T, c net.Conn, d []byte, wait time.Duration) []byte {
	t.Helper()
	if _, err := c.Write(d); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, 2048)
	n, err := c.Read(b)
	if err != nil {
		if isNetTimeout(err) {
			return nil
		}
		t.Fatal(err)
	}
	return b[:n]
}

func udpListener(t *testing.T, m *edgeProbe, spec *EdgeSpec) (*Listener, net.Conn) {
	t.Helper()
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "udp", Network: "udp", Address: "127.0.0.1:0", Module: m, Edge: spec})
	_, address := testutil.SplitAddr(l.Addr())
	c, err := net.Dial("udp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c
}

// TestUDPProxyPerDatagram: every datagram carries its own header; the
// module sees each header's client, and its answer goes back to the proxy.
func TestUDPProxyPerDatagram(t *testing.T) {
	m := &edgeProbe{}
	spec := proxySpec(proxyproto.Require, "127.0.0.1")
	spec.AllowAmplification = true
	l, c := udpListener(t, m, spec)
	for _, src := range []string{"203.0.113.1:53", "203.0.113.2:5353", "198.51.100.3:9"} {
		got := udpExchange(t, c, append(v2(1, 0x12, src, "192.0.2.1:7"), "ping"...), 5*time.Second)
		if string(got) != "ping" {
			t.Fatalf("answer %q, want the payload alone", got)
		}
	}
	want := []string{"203.0.113.1:53", "203.0.113.2:5353", "198.51.100.3:9"}
	if got := m.addrs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("seen %v, want %v", got, want)
	}
	if got := udpExchange(t, c, []byte("no header"), 300*time.Millisecond); got != nil {
		t.Errorf("a datagram without a header was answered: %q", got)
	}
	if got := udpExchange(t, c, v2(1, 0x12, "203.0.113.1:53", "192.0.2.1:7")[:20], 300*time.Millisecond); got != nil {
		t.Errorf("a truncated header was answered: %q", got)
	}
	waitRefused(t, l, ReasonProxyProtocol, 2)
}

// TestUDPRate: a per-source token bucket for datagrams.
func TestUDPRate(t *testing.T) {
	l, c := udpListener(t, &edgeProbe{}, &EdgeSpec{Limits: access.Limits{Rate: 1, Burst: 2}})
	answered := 0
	for range 4 {
		if udpExchange(t, c, []byte("x"), 300*time.Millisecond) != nil {
			answered++
		}
	}
	if answered != 2 {
		t.Errorf("%d of 4 datagrams answered, want the burst of 2", answered)
	}
	waitRefused(t, l, ReasonRate, 2)
}

// TestUDPAmplification: an answer larger than its request to a source
// that is not loopback is dropped unless the listener allows it. The
// source here is the one a PROXY header names, as behind a balancer.
func TestUDPAmplification(t *testing.T) {
	const answer = 512 // chargen's datagram
	ask := func(c net.Conn, src string, n int) bool {
		d := append(v2(1, 0x12, src, "192.0.2.1:19"), bytes.Repeat([]byte{'q'}, n)...)
		return udpExchange(t, c, d, 300*time.Millisecond) != nil
	}
	l, c := udpListener(t, &edgeProbe{answer: answer}, proxySpec(proxyproto.Require, "127.0.0.1"))
	tests := []struct {
		src  string
		n    int
		want bool
	}{
		{"203.0.113.1:4000", 1, false},
		{"203.0.113.1:4000", answer - 1, false},
		{"203.0.113.1:4000", answer, true},
		{"127.0.0.9:4000", 1, true}, // loopback: no guard
	}
	for _, tt := range tests {
		if got := ask(c, tt.src, tt.n); got != tt.want {
			t.Errorf("%d-byte request from %s answered = %v, want %v", tt.n, tt.src, got, tt.want)
		}
	}
	if d := l.Stats().Dropped; d != 2 {
		t.Errorf("dropped = %d, want 2", d)
	}
	allowing := proxySpec(proxyproto.Require, "127.0.0.1")
	allowing.AllowAmplification = true
	_, c2 := udpListener(t, &edgeProbe{answer: answer}, allowing)
	if !ask(c2, "203.0.113.1:4000", 1) {
		t.Error("udp_amplification allow: a small request was not answered")
	}
}

// TestEdgeSpecErrors: a spec the loop cannot serve fails Listen with a
// message naming the setting.
func TestEdgeSpecErrors(t *testing.T) {
	e, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Shutdown(t.Context()) }()
	for _, tt := range []struct {
		spec ListenerSpec
		want string
	}{
		{ListenerSpec{Network: "tcp", Edge: &EdgeSpec{ProxyProtocol: &proxyproto.Policy{Mode: proxyproto.Require}}}, "trusted"},
		{ListenerSpec{Network: "tcp", Edge: &EdgeSpec{Limits: access.Limits{Rate: -1}}}, "rate"},
		{ListenerSpec{Network: "udp", Edge: &EdgeSpec{Limits: access.Limits{MaxPerSource: 1}}}, "max_per_source"},
	} {
		tt.spec.Name, tt.spec.Address, tt.spec.Module = "bad", "127.0.0.1:0", &edgeProbe{}
		_, err := e.Listen(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Listen = %v, want an error naming %s", err, tt.want)
		}
	}
}

// TestProxyThenTLS: the PROXY header comes in clear before the
// ClientHello, in the same segment; the handshake and the module get what
// follows it, and the access log names the TLS version and SNI.
func TestProxyThenTLS(t *testing.T) {
	var logs testutil.SyncBuffer
	f := newTLSFixture(t, "tcp", func(s *ListenerSpec) {
		s.Edge = proxySpec(proxyproto.Require, "127.0.0.1")
		s.Edge.AccessLog = true
		s.Logger = hostileLogger(&logs)
	})
	_, address := testutil.SplitAddr(f.lis.Addr())
	raw, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	// The header rides in front of the ClientHello, as a balancer sends it.
	pre := &prefixConn{Conn: raw, prefix: v2(1, 0x11, "203.0.113.44:1234", "192.0.2.1:443")}
	c := tls.Client(pre, f.clientConfig(tls.VersionTLS13))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	echoAll(t, c, []byte("over tls, behind a proxy\n"))
	if info := f.nextInfo(t); info == nil || info.Version != tls.VersionTLS13 {
		t.Fatalf("TLS info %+v", info)
	}
	c.Close()
	if !testutil.PollUntil(5*time.Second, func() bool { return strings.Contains(logs.String(), "access") }) {
		t.Fatalf("no access line:\n%s", logs.String())
	}
	for _, want := range []string{"remote=203.0.113.44:1234", `tls="TLS 1.3"`, "sni=localhost"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("access line lacks %s:\n%s", want, logs.String())
		}
	}
}

// prefixConn sends prefix before its first write.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Write(b []byte) (int, error) {
	if p.prefix != nil {
		all := append(p.prefix, b...)
		p.prefix = nil
		n, err := p.Conn.Write(all)
		return max(0, n-(len(all)-len(b))), err
	}
	return p.Conn.Write(b)
}
