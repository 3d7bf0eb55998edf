package access

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const sec = int64(1e9)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// nth is the n-th address of 10.0.0.0/8 (or of 2001:db8::/32 when v6).
func nth(n int, v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		b[12], b[13], b[14], b[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func TestParseSet(t *testing.T) {
	tests := []struct {
		in      []string
		want    string // String() of the set, or the error's text
		wantErr bool
	}{
		{nil, "", false},
		{[]string{"10.0.0.0/8", "192.168.1.7"}, "10.0.0.0/8,192.168.1.7/32", false},
		{[]string{"10.1.2.3/8"}, "10.0.0.0/8", false}, // masked
		{[]string{"2001:db8::1/32", "::1"}, "2001:db8::/32,::1/128", false},
		{[]string{"::ffff:10.0.0.0/104"}, "10.0.0.0/8", false},
		{[]string{"10.0.0.0/33"}, `entry 0 "10.0.0.0/33": not a CIDR`, true},
		{[]string{"10.0.0.0/8", "nope"}, `entry 1 "nope": not an address or CIDR`, true},
		{[]string{"fe80::1%eth0"}, `entry 0 "fe80::1%eth0": an address with a zone cannot be matched`, true},
		{[]string{"::ffff:0.0.0.0/90"}, "an IPv4-mapped prefix needs at least 96 bits", true},
		{[]string{""}, `entry 0 "": not an address or CIDR`, true},
	}
	for _, tt := range tests {
		s, err := ParseSet(tt.in)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSet(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSet(%q): %v", tt.in, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("ParseSet(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSetContains(t *testing.T) {
	s := MustParseSet("10.0.0.0/8", "192.168.1.0/24", "203.0.113.9", "2001:db8::/32", "::1", "0.0.0.0/32")
	tests := []struct {
		a    string
		want bool
	}{
		{"10.255.1.2", true},
		{"11.0.0.1", false},
		{"192.168.1.200", true},
		{"192.168.2.1", false},
		{"203.0.113.9", true},
		{"203.0.113.8", false},
		{"::ffff:10.1.1.1", true}, // IPv4-mapped matches the IPv4 prefix
		{"2001:db8:ffff::5", true},
		{"2001:db9::5", false},
		{"::1", true},
		{"::2", false},
		{"fe80::1%eth0", false},
		{"0.0.0.0", true},
		{"::", false}, // IPv6 unspecified is not 0.0.0.0
	}
	for _, tt := range tests {
		if got := s.Contains(addr(tt.a)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.a, got, tt.want)
		}
	}
	if s.Contains(netip.Addr{}) {
		t.Error("an invalid address is contained")
	}
	var empty *Set
	if empty.Contains(addr("10.0.0.1")) || empty.Len() != 0 {
		t.Error("a nil Set contains something")
	}
	all := MustParseSet("0.0.0.0/0", "::/0")
	for _, a := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1"} {
		if !all.Contains(addr(a)) {
			t.Errorf("0.0.0.0/0 and ::/0 do not contain %s", a)
		}
	}
}

func TestGuardAllowDeny(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		a           string
		want        Reason
	}{
		{"no lists: everyone", nil, nil, "198.51.100.1", OK},
		{"allowed", []string{"10.0.0.0/8"}, nil, "10.1.1.1", OK},
		{"not in allow", []string{"10.0.0.0/8"}, nil, "11.1.1.1", Denied},
		{"denied", nil, []string{"10.0.0.0/8"}, "10.1.1.1", Denied},
		{"not denied", nil, []string{"10.0.0.0/8"}, "11.1.1.1", OK},
		{"deny wins over allow", []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}, "10.9.1.1", Denied},
		{"allow around a deny", []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}, "10.8.1.1", OK},
		{"v6 allowed", []string{"2001:db8::/32"}, nil, "2001:db8::77", OK},
		{"v6 not in a v4 allow", []string{"10.0.0.0/8"}, nil, "2001:db8::77", Denied},
		{"mapped client, v4 deny", nil, []string{"127.0.0.0/8"}, "::ffff:127.0.0.2", Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Guard{Allow: MustParseSet(tt.allow...), Deny: MustParseSet(tt.deny...)}
			if got := g.Admit(addr(tt.a), 0); got != tt.want {
				t.Errorf("Admit(%s) = %q, want %q", tt.a, got, tt.want)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		l    Limits
		want string // "" for valid
	}{
		{Limits{}, ""},
		{Limits{MaxPerSource: 3, Rate: 10, Burst: 20, Sources: 100}, ""},
		{Limits{MaxPerSource: -1}, "max_per_source -1"},
		{Limits{Rate: -1}, "rate -1"},
		{Limits{Rate: 0.0001}, "at least 0.001"},
		{Limits{Rate: 2e9}, "at most 1e9"},
		{Limits{Rate: 1, Burst: -2}, "burst -2"},
		{Limits{Rate: 1, Burst: maxBurst + 1}, "burst"},
		{Limits{Burst: 3}, "burst: needs a rate"},
		{Limits{MaxPerSource: 1, Sources: -5}, "sources -5"},
	}
	for _, tt := range tests {
		err := tt.l.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.l, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one containing %q", tt.l, err, tt.want)
		}
	}
	if _, err := NewTable(Limits{}); err == nil {
		t.Error("NewTable accepted limits that limit nothing")
	}
	if _, err := NewShared(Limits{Rate: -1}, 4); err == nil {
		t.Error("NewShared accepted a negative rate")
	}
}

// counters are the two Counter implementations under one table of tests.
var counters = []struct {
	name string
	make func(t *testing.T, l Limits) Counter
}{
	{"table", func(t *testing.T, l Limits) Counter {
		c, err := NewTable(l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"shared", func(t *testing.T, l Limits) Counter {
		c, err := NewShared(l, 4)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

func TestMaxPerSource(t *testing.T) {
	for _, cc := range counters {
		t.Run(cc.name, func(t *testing.T) {
			g := Guard{Limits: cc.make(t, Limits{MaxPerSource: 2})}
			a, b := addr("10.0.0.1"), addr("10.0.0.2")
			steps := []struct {
				op   string // "+" admit, "-" release
				a    netip.Addr
				want Reason
			}{
				{"+", a, OK}, {"+", a, OK}, {"+", a, PerSource}, {"+", a, PerSource},
				{"+", b, OK}, {"+", b, OK}, {"+", b, PerSource},
				{"-", a, OK}, {"+", a, OK}, {"+", a, PerSource},
				{"-", a, OK}, {"-", a, OK}, {"+", a, OK}, {"+", a, OK}, {"+", a, PerSource},
				{"+", addr("::ffff:10.0.0.2"), PerSource}, // the same source, mapped
			}
			for i, s := range steps {
				if s.op == "-" {
					g.Release(s.a)
					continue
				}
				if got := g.Admit(s.a, int64(i)); got != s.want {
					t.Fatalf("step %d: Admit(%s) = %q, want %q", i, s.a, got, s.want)
				}
			}
		})
	}
}

func TestRate(t *testing.T) {
	for _, cc := range counters {
		t.Run(cc.name, func(t *testing.T) {
			// 2 per second, burst 3: 3 at once, then one every 500 ms.
			c := cc.make(t, Limits{Rate: 2, Burst: 3})
			a, b := addr("192.0.2.1"), addr("2001:db8::1")
			now := int64(1000 * sec)
			steps := []struct {
				at   int64 // ns after now
				a    netip.Addr
				want Reason
			}{
				{0, a, OK}, {0, a, OK}, {0, a, OK}, {0, a, Rate},
				{0, b, OK}, // another source has its own bucket
				{sec / 4, a, Rate},
				{sec / 2, a, OK}, {sec / 2, a, Rate},
				{sec, a, OK},
				{10 * sec, a, OK}, {10 * sec, a, OK}, {10 * sec, a, OK}, {10 * sec, a, Rate}, // refilled to the burst, no more
			}
			for i, s := range steps {
				if got := c.Acquire(s.a, now+s.at); got != s.want {
					t.Fatalf("step %d: Acquire(%s) at +%dms = %q, want %q", i, s.a, s.at/1e6, got, s.want)
				}
			}
		})
	}
}

func TestRateDefaultBurst(t *testing.T) {
	tests := []struct {
		rate float64
		want int // admitted at one instant
	}{{0.5, 1}, {1, 1}, {2.5, 3}, {10, 10}}
	for _, tt := range tests {
		c, err := NewTable(Limits{Rate: tt.rate})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for c.Acquire(addr("10.0.0.1"), 5*sec) == OK {
			n++
		}
		if n != tt.want {
			t.Errorf("rate %v: %d admitted at once, want %d", tt.rate, n, tt.want)
		}
	}
}

// TestBothLimits: a refusal for per_source does not spend a rate token.
func TestBothLimits(t *testing.T) {
	c, err := NewTable(Limits{MaxPerSource: 1, Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	a := addr("10.0.0.1")
	if r := c.Acquire(a, 0); r != OK {
		t.Fatal(r)
	}
	for range 5 {
		if r := c.Acquire(a, 0); r != PerSource {
			t.Fatalf("second live connection: %q, want per_source", r)
		}
	}
	c.Release(a)
	if r := c.Acquire(a, 0); r != OK {
		t.Fatalf("after release: %q, want ok: the per_source refusals spent tokens", r)
	}
	c.Release(a)
	if r := c.Acquire(a, 0); r != Rate {
		t.Fatalf("third within the burst of 2: %q, want rate", r)
	}
}

// TestDatagramBucket: on UDP a rate-only Table is the per-source token
// bucket; nothing is released.
func TestDatagramBucket(t *testing.T) {
	g := Guard{Deny: MustParseSet("10.9.0.0/16")}
	c, err := NewTable(Limits{Rate: 100, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	g.Limits = c
	counts := map[Reason]int{}
	for i := range 1000 { // 1000 datagrams in one second from one source
		counts[g.Admit(addr("10.0.0.1"), int64(i)*sec/1000)]++
	}
	// 10 at once, then 100 per second for the rest of the second: 109 or 110.
	if counts[OK] < 109 || counts[OK] > 110 || counts[Rate] != 1000-counts[OK] {
		t.Errorf("1000 datagrams in a second at rate 100 burst 10: %v", counts)
	}
	if r := g.Admit(addr("10.9.1.1"), 0); r != Denied {
		t.Errorf("denied source: %q", r)
	}
	if c.Len() != 1 {
		t.Errorf("%d sources tracked, want 1: a denied datagram took a slot", c.Len())
	}
}

// TestFloodBoundedMemory: 100,000 sources against a table of 64 never track
// more than 64, and a source under its limit is still served.
func TestFloodBoundedMemory(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c, err := NewTable(Limits{Rate: 1, Burst: 1, Sources: 64})
		if err != nil {
			t.Fatal(err)
		}
		slots := len(c.slots)
		for i := range 100_000 {
			if r := c.Acquire(nth(i, v6), int64(i)); r != OK {
				t.Fatalf("new source %d refused: %q", i, r)
			}
			if c.Len() > 64 {
				t.Fatalf("%d sources tracked, cap 64", c.Len())
			}
		}
		if len(c.slots) != slots || slots != 128 {
			t.Errorf("slots grew from %d to %d", slots, len(c.slots))
		}
		// Every tracked source must still be findable after all the evictions.
		seen := 0
		for i := range c.slots {
			if s := &c.slots[i]; s.used {
				seen++
				if _, ok := c.find(s.key, hash(s.key, c.seed)); !ok {
					t.Fatalf("slot %d lost by the probe sequence", i)
				}
			}
		}
		if seen != c.Len() {
			t.Errorf("%d used slots, Len %d", seen, c.Len())
		}
	}
}

// TestLiveNeverEvicted: sources with live connections keep their count; when
// all tracked sources are live, a new source is refused until one closes.
func TestLiveNeverEvicted(t *testing.T) {
	c, err := NewTable(Limits{MaxPerSource: 1, Sources: 8})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if r := c.Acquire(nth(i, false), 0); r != OK {
			t.Fatalf("source %d: %q", i, r)
		}
	}
	if r := c.Acquire(nth(100, false), 0); r != PerSource {
		t.Fatalf("ninth source with eight live: %q, want per_source", r)
	}
	for i := range 8 {
		if r := c.Acquire(nth(i, false), 0); r != PerSource {
			t.Fatalf("source %d lost its live count: %q", i, r)
		}
	}
	c.Release(nth(3, false))
	if c.Len() != 7 {
		t.Errorf("Len %d after a source's last close, want 7 (nothing to remember without a rate)", c.Len())
	}
	if r := c.Acquire(nth(100, false), 0); r != OK {
		t.Fatalf("new source after a close: %q", r)
	}
}

// TestTableModel drives a small table with random admits and releases and
// checks every answer against a plain map: it exercises probing, removal
// with backward shift and the live count.
func TestTableModel(t *testing.T) {
	const maxPer = 3
	c, err := NewTable(Limits{MaxPerSource: maxPer, Sources: 256})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[netip.Addr]int{}
	for step := range 200_000 {
		a := nth(rng.IntN(128), rng.IntN(2) == 0) // 256 addresses: never more live sources than the table's cap
		if rng.IntN(2) == 0 {
			want := OK
			if live[a] >= maxPer {
				want = PerSource
			}
			if got := c.Acquire(a, 0); got != want {
				t.Fatalf("step %d: Acquire(%s) = %q with %d live, want %q", step, a, got, live[a], want)
			}
			if want == OK {
				live[a]++
			}
		} else if live[a] > 0 {
			c.Release(a)
			if live[a]--; live[a] == 0 {
				delete(live, a)
			}
		}
		if c.Len() != len(live) {
			t.Fatalf("step %d: Len %d, model %d", step, c.Len(), len(live))
		}
	}
}

// TestSharedConcurrent: loops sharing one Shared never let one source hold
// more than MaxPerSource, and every count returns to zero.
func TestSharedConcurrent(t *testing.T) {
	const maxPer, loops, rounds = 4, 8, 2000
	s, err := NewShared(Limits{MaxPerSource: maxPer, Sources: 64}, 8)
	if err != nil {
		t.Fatal(err)
	}
	var held [16]atomic.Int32
	var over atomic.Bool
	var wg sync.WaitGroup
	for l := range loops {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(l), 7))
			var mine []int
			for range rounds {
				if len(mine) > 0 && rng.IntN(2) == 0 {
					i := mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					held[i].Add(-1)
					s.Release(nth(i, false))
					continue
				}
				i := rng.IntN(len(held))
				if s.Acquire(nth(i, false), 0) == OK {
					if held[i].Add(1) > maxPer {
						over.Store(true)
					}
					mine = append(mine, i)
				}
			}
			for _, i := range mine {
				held[i].Add(-1)
				s.Release(nth(i, false))
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Error("a source held more than max_per_source connections at once")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("%d sources still tracked after every connection closed", n)
	}
}

func TestAdmitAllocatesNothing(t *testing.T) {
	lim := Limits{MaxPerSource: 100, Rate: 1e6, Burst: 1000, Sources: 1024}
	tab, _ := NewTable(lim)
	sh, _ := NewShared(lim, 4)
	for _, c := range []Counter{tab, sh} {
		g := Guard{Allow: MustParseSet("10.0.0.0/8", "2001:db8::/32"), Deny: MustParseSet("10.9.0.0/16"), Limits: c}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			a := nth(i%5000, i%2 == 0) // new sources too, with evictions
			if g.Admit(a, int64(i)*1000) == OK {
				g.Release(a)
			}
			i++
		})
		if allocs != 0 {
			t.Errorf("%T: %v allocations per admit", c, allocs)
		}
	}
}

func BenchmarkSetContains(b *testing.B) {
	var cidrs []string
	for i := range 1000 {
		cidrs = append(cidrs, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), fmt.Sprintf("2001:db8:%x::/48", i))
	}
	s := MustParseSet(cidrs...)
	a := addr("10.3.7.1")
	b.ReportAllocs()
	for b.Loop() {
		if !s.Contains(a) {
			b.Fatal("not contained")
		}
	}
}

// BenchmarkAdmit: one accept and its close, for one source that is already
// tracked (the common case) and for a flood of new sources that evicts.
func BenchmarkAdmit(b *testing.B) {
	lim := Limits{MaxPerSource: 100, Rate: 1e9, Burst: 1 << 20}
	for _, tc := range []struct {
		name    string
		sources int
	}{{"one-source", 1}, {"flood", 1 << 20}} {
		b.Run("table/"+tc.name, func(b *testing.B) {
			c, _ := NewTable(lim)
			g := Guard{Deny: MustParseSet("192.0.2.0/24"), Limits: c}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				a := nth(i%tc.sources, false)
				if g.Admit(a, int64(i)) == OK {
					g.Release(a)
				}
				i++
			}
		})
		b.Run("shared/"+tc.name, func(b *testing.B) {
			c, _ := NewShared(lim, 16)
			g := Guard{Deny: MustParseSet("192.0.2.0/24"), Limits: c}
			var seq atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					a := nth(i%tc.sources, false)
					if g.Admit(a, int64(i)) == OK {
						g.Release(a)
					}
				}
			})
		})
	}
}
