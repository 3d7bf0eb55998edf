package echo_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// newEcho provisions an echo instance for network with the given options.
func newEcho(tb testing.TB, network, options string) *echo.Echo {
	tb.Helper()
	e := new(echo.Echo)
	if err := apitest.Provision(tb, e, network, options); err != nil {
		tb.Fatalf("Provision(%q): %v", options, err)
	}
	return e
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("echo")
	if !ok {
		t.Fatal("echo is not registered")
	}
	if _, ok := info.New().(*echo.Echo); !ok {
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
		{"", ""},
		{"mode: line", ""},
		{"mode: raw", ""},
		{"max_line_bytes: 2", ""},
		{"max_line_bytes: 4194304", ""},
		{"mode: raw\nmax_line_bytes: 100", ""},
		{"mode: LINE", `options.yaml:1:7: option mode: mode must be "line" or "raw", not "LINE"`},
		{`mode: ""`, `options.yaml:1:7`},
		{"mode: 1", "options.yaml:1:7"},
		{"max_line_bytes: 1", "options.yaml:1:17: option max_line_bytes: max_line_bytes must be between 2 and 4194304, not 1"},
		{"max_line_bytes: 0", "options.yaml:1:17"},
		{"max_line_bytes: -5", "options.yaml:1:17"},
		{"max_line_bytes: 4194305", "options.yaml:1:17"},
		{"max_line_bytes: 1.5", "options.yaml:1:17"},
		{"max_line_bytes: big", "options.yaml:1:17"},
		{"mode: line\nbogus: 1", `options.yaml:2:1: unknown option "bogus"`},
	}
	for _, tt := range tests {
		err := apitest.Provision(t, new(echo.Echo), "tcp", tt.yaml)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestProvisionWithoutLogger(t *testing.T) {
	e := new(echo.Echo)
	if err := e.Provision(api.Setup{Listener: "bare", Network: "tcp", Options: apitest.Options(t, "")}); err != nil {
		t.Fatal(err)
	}
	c := apitest.NewConn(e, apitest.WithT(t))
	c.FeedString(strings.Repeat("x", echo.DefaultMaxLineBytes))
	if c.Reason() != echo.ReasonLineTooLong {
		t.Errorf("defaults not applied: Reason %q", c.Reason())
	}
}

// TestLineMode is the line echo of README.md (The echo module), read by read.
func TestLineMode(t *testing.T) {
	tests := []struct {
		name       string
		limit      int // max_line_bytes; 0: the default
		reads      []string
		eof        bool
		want       string     // what the client reads
		unconsumed string     // what waits in the loop's input
		reason     api.Reason // "" while open
	}{
		{name: "one line", reads: []string{"hello\n"}, want: "hello\n"},
		{name: "line split across reads", reads: []string{"he", "l", "lo\nwo", "rld\n"}, want: "hello\nworld\n"},
		{name: "several lines in one read", reads: []string{"a\nbb\nccc\n"}, want: "a\nbb\nccc\n"},
		{name: "partial line waits", reads: []string{"abc\ndef"}, want: "abc\n", unconsumed: "def"},
		{name: "partial line completes", reads: []string{"abc\nde", "f\n"}, want: "abc\ndef\n"},
		{name: "empty lines", reads: []string{"\n\n", "\n"}, want: "\n\n\n"},
		{name: "binary bytes", reads: []string{"\x00\x01\x7f\x80\xfe\xff\n"}, want: "\x00\x01\x7f\x80\xfe\xff\n"},
		{name: "NUL", reads: []string{"\x00\n\x00"}, want: "\x00\n", unconsumed: "\x00"},
		{name: "CRLF is kept", reads: []string{"a\r\nb\r\n"}, want: "a\r\nb\r\n"},
		{name: "lone CR ends no line", reads: []string{"a\rb"}, unconsumed: "a\rb"},
		{name: "CRLF split between CR and LF", reads: []string{"a\r", "\n"}, want: "a\r\n"},
		{name: "invalid UTF-8", reads: []string{"\xc3\x28\xa0\xa1\xed\xa0\x80\n"}, want: "\xc3\x28\xa0\xa1\xed\xa0\x80\n"},
		{name: "UTF-8 character split across reads", reads: []string{"h\xc3", "\xa9llo \xe2\x82", "\xac\n"}, want: "héllo €\n"},
		{name: "exactly the limit", limit: 8, reads: []string{"1234567\n"}, want: "1234567\n"},
		{name: "exactly the limit across reads", limit: 8, reads: []string{"12345", "67\n"}, want: "1234567\n"},
		{name: "partial one short of the limit waits", limit: 8, reads: []string{"1234567"}, unconsumed: "1234567"},
		{name: "one byte over the limit", limit: 8, reads: []string{"12345678\n"}, reason: echo.ReasonLineTooLong},
		{name: "over the limit across reads", limit: 8, reads: []string{"12345", "678\n"}, reason: echo.ReasonLineTooLong},
		{name: "partial reaching the limit", limit: 8, reads: []string{"1234", "5678"}, reason: echo.ReasonLineTooLong},
		{name: "lines before a long one are echoed", limit: 8, reads: []string{"ok\nfine\n123456789\nlater\n"},
			want: "ok\nfine\n", reason: echo.ReasonLineTooLong},
		{name: "lines before a long partial are echoed", limit: 8, reads: []string{"ok\n12345678"},
			want: "ok\n", reason: echo.ReasonLineTooLong},
		{name: "smallest limit", limit: 2, reads: []string{"a\n\nb\n"}, want: "a\n\nb\n"},
		{name: "smallest limit over", limit: 2, reads: []string{"a\nbc\n"}, want: "a\n", reason: echo.ReasonLineTooLong},
		{name: "many short lines past the limit", limit: 8, reads: []string{strings.Repeat("1234567\n", 10)},
			want: strings.Repeat("1234567\n", 10)},
		{name: "half-close after a partial line", reads: []string{"abc\ndef"}, eof: true, want: "abc\ndef", reason: api.ReasonClient},
		{name: "half-close after complete lines", reads: []string{"abc\n"}, eof: true, want: "abc\n", reason: api.ReasonClient},
		{name: "half-close with no input", eof: true, reason: api.ReasonClient},
		{name: "half-close after a partial one short of the limit", limit: 8, reads: []string{"1234567"}, eof: true,
			want: "1234567", reason: api.ReasonClient},
		{name: "half-close after a partial at the limit", limit: 8, reads: []string{"12345678"}, eof: true,
			reason: echo.ReasonLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ""
			if tt.limit != 0 {
				opts = fmt.Sprintf("max_line_bytes: %d", tt.limit)
			}
			c := apitest.NewConn(newEcho(t, "tcp", opts), apitest.WithT(t))
			for _, r := range tt.reads {
				c.FeedString(r)
			}
			if tt.eof {
				c.FeedEOF()
			}
			if got := c.WrittenString(); got != tt.want {
				t.Errorf("client read %q, want %q", got, tt.want)
			}
			if got := string(c.Unconsumed()); got != tt.unconsumed {
				t.Errorf("unconsumed %q, want %q", got, tt.unconsumed)
			}
			if c.Reason() != tt.reason || c.Closed() != (tt.reason != "") {
				t.Errorf("reason %q (closed %v), want %q", c.Reason(), c.Closed(), tt.reason)
			}
			if c.Aborted() {
				t.Error("aborted: a close from echo must deliver what is queued")
			}
		})
	}
}

func TestLineTooLongIsLogged(t *testing.T) {
	log := apitest.NewLogger(t)
	e := new(echo.Echo)
	err := e.Provision(api.Setup{Listener: "echo", Network: "tcp", Options: apitest.Options(t, "max_line_bytes: 16"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c := apitest.NewConn(e, apitest.WithT(t))
	c.FeedString(strings.Repeat("y", 40) + "\n")
	if c.Reason() != echo.ReasonLineTooLong || !errors.Is(c.Err(), echo.ErrLineTooLong) {
		t.Fatalf("Reason %q Err %v", c.Reason(), c.Err())
	}
	warns := log.Find(hclog.Warn, "line too long")
	if len(warns) != 1 {
		t.Fatalf("want one warning, got:\n%s", log)
	}
	if v, _ := warns[0].Arg("remote"); v != c.RemoteAddr().String() {
		t.Errorf("remote = %v, want %v", v, c.RemoteAddr())
	}
	if v, _ := warns[0].Arg("limit"); v != 16 {
		t.Errorf("limit = %v, want 16", v)
	}
}

// TestLineTooLongLetsOthersGoOn is the daemon and its other clients going
// on when one client sends a long line.
func TestLineTooLongLetsOthersGoOn(t *testing.T) {
	e := newEcho(t, "tcp", "max_line_bytes: 8")
	l := apitest.NewLoop(apitest.WithT(t))
	bad := apitest.NewConn(e, apitest.WithT(t), apitest.WithLoop(l))
	good := apitest.NewConn(e, apitest.WithT(t), apitest.WithLoop(l))
	bad.FeedString("far too long\n")
	good.FeedString("short\n")
	if !bad.Closed() || good.Closed() || good.WrittenString() != "short\n" {
		t.Errorf("bad closed %v; good closed %v and read %q", bad.Closed(), good.Closed(), good.WrittenString())
	}
}

// TestLineModeKeepsOrderUnderBackpressure is a client that sends without
// reading: output queues in order, the loop stops reading, and everything
// comes back once the client reads.
func TestLineModeKeepsOrderUnderBackpressure(t *testing.T) {
	c := apitest.NewConn(newEcho(t, "tcp", ""), apitest.WithT(t), apitest.WithWritable(10), apitest.WithWatermarks(64, 16))
	var sent bytes.Buffer
	for i := 0; i < 50; i++ {
		line := fmt.Sprintf("line %d\n", i)
		sent.WriteString(line)
		c.FeedSplit([]byte(line))
	}
	if !c.Throttled() {
		t.Fatalf("not throttled with %d bytes queued", c.Buffered())
	}
	for i := 0; c.Buffered() > 0 && i < 1000; i++ {
		c.Drain(7)
	}
	c.FeedEOF()
	if got := c.WrittenString(); got != sent.String() {
		t.Fatalf("client read %q\nwant %q", got, sent.String())
	}
	if !c.Closed() || c.Reason() != api.ReasonClient {
		t.Errorf("Closed %v Reason %q", c.Closed(), c.Reason())
	}
}

// TestLineModeEOFWithQueuedOutput is the half-close arriving while echoes
// still queue: the close waits for them.
func TestLineModeEOFWithQueuedOutput(t *testing.T) {
	c := apitest.NewConn(newEcho(t, "tcp", ""), apitest.WithT(t), apitest.WithWritable(0))
	c.FeedString("one\ntwo\nthr")
	c.FeedEOF()
	if c.Closed() || !c.Closing() {
		t.Fatalf("closed with %d bytes unsent", c.Buffered())
	}
	c.Drain(-1)
	if got := c.WrittenString(); got != "one\ntwo\nthr" || !c.Closed() || c.Aborted() {
		t.Errorf("client read %q, closed %v, aborted %v", got, c.Closed(), c.Aborted())
	}
}

func TestRawMode(t *testing.T) {
	c := apitest.NewConn(newEcho(t, "tcp", "mode: raw"), apitest.WithT(t))
	c.FeedString("no newline")
	if got := string(c.TakeWritten()); got != "no newline" {
		t.Fatalf("raw echoed %q at once, want all of it", got)
	}
	c.FeedString("\x00\xff\r\n")
	if got := string(c.TakeWritten()); got != "\x00\xff\r\n" || len(c.Unconsumed()) != 0 {
		t.Fatalf("raw echoed %q", got)
	}
	c.FeedString(strings.Repeat("z", 1<<17)) // no line limit in raw mode
	if got := len(c.TakeWritten()); got != 1<<17 || c.Closed() {
		t.Fatalf("raw echoed %d bytes, closed %v", got, c.Closed())
	}
	c.FeedEOF()
	if !c.Closed() || c.Reason() != api.ReasonClient {
		t.Errorf("after EOF: Closed %v Reason %q", c.Closed(), c.Reason())
	}
}

func TestDrain(t *testing.T) {
	t.Run("line mode gives back the partial line", func(t *testing.T) {
		c := apitest.NewConn(newEcho(t, "tcp", ""), apitest.WithT(t))
		c.FeedString("done\npart")
		c.Shutdown()
		if got := c.WrittenString(); got != "done\npart" || !c.Closed() || c.Reason() != api.ReasonShutdown || c.Aborted() {
			t.Errorf("client read %q, closed %v, reason %q, aborted %v", got, c.Closed(), c.Reason(), c.Aborted())
		}
	})
	t.Run("line mode with output queued", func(t *testing.T) {
		c := apitest.NewConn(newEcho(t, "tcp", ""), apitest.WithT(t), apitest.WithWritable(0))
		c.FeedString("done\npart")
		c.Shutdown()
		c.Drain(-1)
		if got := c.WrittenString(); got != "done\npart" || !c.Closed() || c.Aborted() {
			t.Errorf("client read %q, closed %v, aborted %v", got, c.Closed(), c.Aborted())
		}
	})
	t.Run("raw mode", func(t *testing.T) {
		c := apitest.NewConn(newEcho(t, "tcp", "mode: raw"), apitest.WithT(t))
		c.FeedString("x")
		c.Shutdown()
		if got := c.WrittenString(); got != "x" || !c.Closed() || c.Reason() != api.ReasonShutdown {
			t.Errorf("client read %q, closed %v, reason %q", got, c.Closed(), c.Reason())
		}
	})
}

func TestUDP(t *testing.T) {
	for _, mode := range []string{"line", "raw"} {
		t.Run(mode, func(t *testing.T) {
			e := newEcho(t, "udp", "mode: "+mode)
			w := apitest.NewPacketWriter(apitest.WithT(t))
			client := netip.MustParseAddrPort("[2001:db8::1]:50000")
			w.Deliver(e, []byte("no newline, \x00 and all"), client)
			w.Deliver(e, nil, client)
			got := w.TakePackets()
			if len(got) != 2 || string(got[0].Data) != "no newline, \x00 and all" || got[0].Addr != client || len(got[1].Data) != 0 {
				t.Fatalf("sent %+v", got)
			}
			for _, port := range []uint16{0, 7, 13, 19, 37, 1023} {
				w.Deliver(e, []byte("bounce"), netip.AddrPortFrom(client.Addr(), port))
			}
			if got := w.TakePackets(); len(got) != 0 {
				t.Errorf("answered a reflector port: %+v", got)
			}
			w.SetQueueFull(true)
			w.Deliver(e, []byte("dropped"), client) // must not panic or retry
			if w.Dropped() != 1 {
				t.Errorf("Dropped = %d", w.Dropped())
			}
		})
	}
}

// TestOnReadableAllocatesNothing keeps the hot path free of garbage: the
// lines go out from the loop's input, the partial line stays there.
func TestOnReadableAllocatesNothing(t *testing.T) {
	for _, tt := range []struct {
		name, opts string
		reads      []string
	}{
		{"lines and a partial", "", []string{"hello\nwor", "ld\nand more\n"}},
		{"input past the limit", "max_line_bytes: 16", []string{"0123456789\n0123456789\n01234", "56789\n"}},
		{"raw", "mode: raw", []string{"anything at all"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := apitest.NewConn(newEcho(t, "tcp", tt.opts), apitest.WithT(t))
			reads := make([][]byte, len(tt.reads))
			for i, r := range tt.reads {
				reads[i] = []byte(r)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				for _, r := range reads {
					c.Feed(r)
				}
				c.ResetWritten()
			})
			if allocs != 0 {
				t.Errorf("%v allocations per run", allocs)
			}
			if c.Closed() {
				t.Fatal("closed during the run")
			}
		})
	}
}

func BenchmarkLineEcho(b *testing.B) {
	for _, bb := range []struct {
		name string
		line int // bytes per line, \n included
		read int // bytes per read
	}{
		{"64B-lines/64KiB-reads", 64, 64 << 10},
		{"64B-lines/1500B-reads", 64, 1500}, // lines split across reads
		{"1KiB-lines/64KiB-reads", 1 << 10, 64 << 10},
		{"60KiB-lines/64KiB-reads", 60 << 10, 64 << 10},
	} {
		b.Run(bb.name, func(b *testing.B) {
			line := append(bytes.Repeat([]byte("x"), bb.line-1), '\n')
			stream := bytes.Repeat(line, (bb.read+bb.line-1)/bb.line*4)
			var reads [][]byte
			for p := stream; len(p) > 0; {
				n := min(bb.read, len(p))
				reads = append(reads, p[:n])
				p = p[n:]
			}
			c := apitest.NewConn(newEcho(b, "tcp", ""), apitest.WithT(b))
			feed := func() {
				for _, r := range reads {
					c.Feed(r)
				}
				c.ResetWritten()
			}
			feed() // grow the fake's buffers outside the measurement
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				feed()
			}
		})
	}
}
