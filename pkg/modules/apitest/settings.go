package apitest

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
)

// DefaultListener is the listener name a fake reports unless WithListener
// says otherwise. The other bounds of a fake are the loop's defaults, from
// the contract (api.DefaultHighWatermark, api.DefaultMaxInput), so that a
// module meets the same limits in tests as in production.
const DefaultListener = "test"

// Option configures a Conn, a PacketWriter or a Loop; each ignores the
// options that do not concern it.
type Option func(*settings)

type settings struct {
	tb        testing.TB
	listener  string
	local     net.Addr
	remote    net.Addr
	loop      *Loop
	room      int
	high, low int
	maxInput  int
	seed      uint64
}

func newSettings(opts []Option) settings {
	s := settings{
		listener: DefaultListener,
		local:    &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8888},
		remote:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321},
		room:     -1,
		high:     api.DefaultHighWatermark,
		low:      api.DefaultLowWatermark(api.DefaultHighWatermark),
		maxInput: api.DefaultMaxInput,
		seed:     1,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// WithT reports contract violations and misuse through tb.Errorf, failing
// the test, instead of panicking.
func WithT(tb testing.TB) Option { return func(s *settings) { s.tb = tb } }

// WithListener sets the listener name that Listener reports.
func WithListener(name string) Option { return func(s *settings) { s.listener = name } }

// WithLocalAddr sets the address LocalAddr reports.
func WithLocalAddr(a net.Addr) Option { return func(s *settings) { s.local = a } }

// WithRemoteAddr sets the address RemoteAddr reports.
func WithRemoteAddr(a net.Addr) Option { return func(s *settings) { s.remote = a } }

// WithLoop puts the connection on l, so that several connections share one
// loop as they do in netd; by default each Conn has a Loop of its own.
func WithLoop(l *Loop) Option { return func(s *settings) { s.loop = l } }

// WithWritable sets how many bytes the kernel takes before output queues,
// from the start (so that even OnAccept's writes can queue). Negative means
// unlimited, the default. See Conn.SetWritable.
func WithWritable(n int) Option { return func(s *settings) { s.room = n } }

// WithWatermarks sets the queued output above which the fake stops reading
// (high) and at or below which it reads again (low). high <= 0 turns the
// throttle off.
func WithWatermarks(high, low int) Option {
	return func(s *settings) { s.high, s.low = high, low }
}

// WithMaxInput sets the unconsumed input above which the fake aborts the
// connection with api.ReasonError, as the loop does. n <= 0 turns the bound
// off.
func WithMaxInput(n int) Option { return func(s *settings) { s.maxInput = n } }

// WithSeed seeds the random fragmentation of FeedSplit, so that a failure
// found with one seed can be replayed.
func WithSeed(seed uint64) Option { return func(s *settings) { s.seed = seed } }

// fail reports a violation or a misuse: through the test when there is one,
// else by panicking, since a silent fake would let the bug through.
func (s *settings) fail(format string, args ...any) {
	msg := "apitest: " + fmt.Sprintf(format, args...)
	if s.tb != nil {
		s.tb.Helper()
		s.tb.Error(msg)
		return
	}
	panic(msg)
}

// culprit names the first caller outside this package, where a violation
// was committed, since the test's own line is far from it.
func culprit() string {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/netd/netd/pkg/modules/apitest.") {
			return fmt.Sprintf(" (at %s:%d)", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}
