package chargen_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/chargen"
)

// printable is RFC 864's ring: the 95 printable ASCII characters in order.
const printable = ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`" + `abcdefghijklmnopqrstuvwxyz{|}~`

// line returns line n of the pattern, CRLF included, computed apart from
// the module: the 72 characters of the ring from number n on.
func line(n int) string {
	var b strings.Builder
	for i := range 72 {
		b.WriteByte(printable[(n+i)%len(printable)])
	}
	return b.String() + "\r\n"
}

// pattern returns the first n bytes a TCP client reads.
func pattern(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(line(i))
	}
	return b.Bytes()[:n]
}

func newChargen(tb testing.TB, network string) *chargen.Chargen {
	tb.Helper()
	info, ok := api.Lookup("chargen")
	if !ok {
		tb.Fatal("chargen is not registered")
	}
	g := info.New().(*chargen.Chargen)
	if err := apitest.Provision(tb, g, network, ""); err != nil {
		tb.Fatal(err)
	}
	return g
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("chargen")
	if !ok {
		t.Fatal("chargen is not registered")
	}
	if _, ok := info.New().(*chargen.Chargen); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestNoOptions(t *testing.T) {
	if err := apitest.Provision(t, new(chargen.Chargen), "udp", ""); err != nil {
		t.Errorf("no options: %v", err)
	}
	err := apitest.Provision(t, new(chargen.Chargen), "tcp", "line_length: 80")
	if err == nil || !strings.Contains(err.Error(), `options.yaml:1:1: unknown option "line_length"`) {
		t.Errorf("Provision = %v, want an unknown option error", err)
	}
}

// TestPattern: RFC 864's lines, checked against literals so that the
// helpers above are checked too.
func TestPattern(t *testing.T) {
	if len(printable) != 95 || chargen.Lines != 95 || chargen.Period != 95*74 {
		t.Fatalf("ring of %d, Lines %d, Period %d", len(printable), chargen.Lines, chargen.Period)
	}
	literals := map[int]string{
		0:  " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n",
		1:  "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n",
		23: "789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\r\n",
		94: "~ !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdef\r\n",
		95: " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n",
	}
	for n, want := range literals {
		if got := line(n); got != want {
			t.Errorf("line %d = %q, want %q", n, got, want)
		}
	}
	p := pattern(3 * chargen.Period)
	if !bytes.Equal(p[:chargen.Period], p[chargen.Period:2*chargen.Period]) {
		t.Error("pattern does not repeat after Period")
	}
}

// TestAcceptAsksForWritable: chargen writes only when the socket can take
// output, never from OnAccept.
func TestAcceptAsksForWritable(t *testing.T) {
	c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t))
	if !c.WantsWritable() || len(c.Written()) != 0 || c.Buffered() != 0 {
		t.Fatalf("after accept: wants writable %v, wrote %d, buffered %d", c.WantsWritable(), len(c.Written()), c.Buffered())
	}
}

// TestFastClient: a client that reads everything gets Budget bytes per
// OnWritable, the pattern exactly, across Piece and Period boundaries.
func TestFastClient(t *testing.T) {
	c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t))
	const rounds = 40 // 2.5 MiB, 370 periods
	for i := range rounds {
		if c.Drain(0); len(c.Written()) != (i+1)*chargen.Budget {
			t.Fatalf("round %d: %d bytes written, want %d", i, len(c.Written()), (i+1)*chargen.Budget)
		}
		if c.Buffered() != 0 {
			t.Fatalf("round %d: %d bytes queued with a kernel that takes everything", i, c.Buffered())
		}
	}
	got := c.Written()
	if want := pattern(len(got)); !bytes.Equal(got, want) {
		i := firstDiff(got, want)
		t.Fatalf("byte %d: got %q, want %q", i, got[i:min(i+80, len(got))], want[i:min(i+80, len(want))])
	}
}

// TestSlowClient: with a kernel that takes little, chargen's queued output
// stays under one Piece however long the client dawdles, no more is
// produced until the client reads, and what the client reads, in whatever
// sizes, is the pattern exactly, across every Piece boundary.
func TestSlowClient(t *testing.T) {
	for _, tt := range []struct{ room, read int }{
		{0, 777}, {1000, 7}, {1000, 4096}, {chargen.Piece - 1, 13}, {73, chargen.Piece + 1},
	} {
		t.Run(fmt.Sprintf("room=%d,read=%d", tt.room, tt.read), func(t *testing.T) {
			c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t), apitest.WithWritable(tt.room))
			c.Drain(0) // the socket turns writable
			for i := 0; len(c.Written()) < 3*chargen.Piece+chargen.Period && i < 100_000; i++ {
				if c.Buffered() > chargen.Piece {
					t.Fatalf("after %d bytes read: %d queued, want at most %d", len(c.Written()), c.Buffered(), chargen.Piece)
				}
				if c.Buffered() > 0 {
					// Wake-ups without the client reading produce nothing.
					before, queued := len(c.Written()), c.Buffered()
					c.Drain(0)
					if len(c.Written()) != before || c.Buffered() != queued {
						t.Fatalf("Drain(0) moved %d bytes and queued %d more", len(c.Written())-before, c.Buffered()-queued)
					}
				}
				c.Drain(tt.read)
			}
			got := c.Written()
			if want := pattern(len(got)); !bytes.Equal(got, want) {
				i := firstDiff(got, want)
				t.Fatalf("byte %d: got %q, want %q", i, got[i:min(i+80, len(got))], want[i:min(i+80, len(want))])
			}
			if len(got) < 3*chargen.Piece {
				t.Fatalf("only %d bytes read", len(got))
			}
			// The first Piece boundary falls inside line 221 (16384 = 221*74 + 30).
			at := chargen.Piece
			if want := line(221)[30-5 : 30+5]; string(got[at-5:at+5]) != want {
				t.Errorf("around the first Piece boundary: %q, want %q", got[at-5:at+5], want)
			}
		})
	}
}

// TestInputIgnored: what the client sends is consumed and thrown away; the
// output goes on unchanged.
func TestInputIgnored(t *testing.T) {
	c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t), apitest.WithWritable(100), apitest.WithMaxInput(64))
	c.Drain(0)
	for range 1000 {
		c.FeedString("ignore me, please\n")
		c.Drain(100)
	}
	if len(c.Unconsumed()) != 0 || c.Closing() {
		t.Fatalf("unconsumed %d, closing %v (%q)", len(c.Unconsumed()), c.Closing(), c.Reason())
	}
	if got := c.Written(); !bytes.Equal(got, pattern(len(got))) {
		t.Error("input changed the output")
	}
}

// TestHalfClose: once the client half-closes, chargen closes, delivering
// what it had queued and nothing more.
func TestHalfClose(t *testing.T) {
	c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t), apitest.WithWritable(500))
	c.Drain(0)
	c.FeedString("bye")
	c.FeedEOF()
	if !c.Closing() {
		t.Fatal("not closing after the half-close")
	}
	queued := c.Buffered()
	c.Drain(-1)
	got := c.Written()
	if !c.Closed() || c.Reason() != api.ReasonClient || c.Aborted() {
		t.Errorf("closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
	}
	if len(got) != 500+queued || !bytes.Equal(got, pattern(len(got))) {
		t.Errorf("client read %d bytes, want the %d written and queued, in pattern", len(got), 500+queued)
	}
}

// TestEveryConnectionStartsAtTheFirstLine: connections on one instance do
// not share a position.
func TestEveryConnectionStartsAtTheFirstLine(t *testing.T) {
	g := newChargen(t, "tcp")
	l := apitest.NewLoop(apitest.WithT(t))
	a := apitest.NewConn(g, apitest.WithT(t), apitest.WithLoop(l))
	a.Drain(0)
	a.Drain(0)
	b := apitest.NewConn(g, apitest.WithT(t), apitest.WithLoop(l), apitest.WithWritable(2*74))
	b.Drain(0)
	if got := b.WrittenString(); got != line(0)+line(1) {
		t.Errorf("second connection read %q", got)
	}
	a.Terminate(api.ReasonError, nil)
	if !a.Closed() || b.Closed() {
		t.Errorf("a closed %v, b closed %v", a.Closed(), b.Closed())
	}
}

func TestShutdown(t *testing.T) {
	c := apitest.NewConn(newChargen(t, "tcp"), apitest.WithT(t), apitest.WithWritable(10))
	c.Drain(0)
	c.Shutdown()
	c.Drain(-1)
	if !c.Closed() || c.Reason() != api.ReasonShutdown || c.Aborted() {
		t.Errorf("closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
	}
}

// datagram is the UDP answer that starts at line n: 13 lines, then the
// first 60 characters of the next and CRLF, as xinetd sends.
func datagram(n int) string {
	var b strings.Builder
	for i := range 13 {
		b.WriteString(line(n + i))
	}
	return b.String() + line(n + 13)[:60] + "\r\n"
}

// TestPacket: each datagram is answered with 1024 bytes of the pattern,
// each answer going on from where the last stopped, as xinetd's do; none
// to a port below 1024, and those do not move the pattern on.
func TestPacket(t *testing.T) {
	if len(datagram(0)) != chargen.DatagramSize || chargen.DatagramLines != 14 {
		t.Fatalf("datagram of %d bytes, %d lines", len(datagram(0)), chargen.DatagramLines)
	}
	g := newChargen(t, "udp")
	w := apitest.NewPacketWriter()
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	for k := range 200 { // 200*14 lines: the ring goes round 29 times
		w.Deliver(g, []byte(strings.Repeat("?", k)), netip.MustParseAddrPort("127.0.0.1:19"))
		w.Deliver(g, nil, netip.MustParseAddrPort("127.0.0.1:1023"))
		w.Deliver(g, []byte(strings.Repeat("?", k)), from)
		got := w.TakePackets()
		if len(got) != 1 || got[0].Addr != from {
			t.Fatalf("datagram %d: answers %+v", k, got)
		}
		if want := datagram(k * 14 % 95); string(got[0].Data) != want {
			t.Fatalf("datagram %d: got %q, want %q", k, got[0].Data, want)
		}
	}
	// A second listener has its own place in the pattern.
	w.Deliver(newChargen(t, "udp"), nil, from)
	if got := w.TakePackets(); len(got) != 1 || string(got[0].Data) != datagram(0) {
		t.Errorf("a new instance answered %+v", got)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func BenchmarkFastClient(b *testing.B) {
	g := newChargen(b, "tcp")
	c := apitest.NewConn(g)
	b.SetBytes(chargen.Budget)
	b.ReportAllocs()
	for b.Loop() {
		c.Drain(0)
		c.ResetWritten()
	}
}
