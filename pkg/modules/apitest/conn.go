package apitest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// poison overwrites input once the callback that saw it returns, as the
// loop's shared read buffer is overwritten by the next read: a module that
// keeps an Inbound slice sees garbage in its tests, not in production.
const poison = 0xDB

type callback uint8

const (
	cbAccept callback = iota
	cbReadable
	cbWritable
	cbDrain
)

// Conn is a fake api.Conn: the loop and the kernel around one stream
// connection, driven by the test.
//
// The test plays the client: Feed delivers bytes (OnReadable), FeedEOF a
// half-close, Drain reads output (OnWritable), Shutdown drains the daemon
// (OnDrain), Terminate closes the connection as the loop does on a reset or
// an idle timeout. The module's side of the contract (Inbound, Write,
// Close...) may only be called from its callbacks or from functions run by
// Loop.RunPending; elsewhere it is a violation.
//
// Like netd's loop, the fake calls OnClose as soon as the connection closes,
// which can be inside the module's own call to Close, CloseFor or Abort.
type Conn struct {
	h    api.StreamHandler
	s    settings
	loop *Loop

	// buf holds the unconsumed input; Inbound shows buf[consumed:]. After
	// each callback the rest moves to spare and buf is poisoned.
	buf      []byte
	spare    []byte
	consumed int
	held     []byte // arrived while reading is stopped: still in the kernel
	heldEOF  bool
	eofFed   bool
	inClosed bool

	written []byte // taken by the kernel, in order
	queue   []byte // written by the module, not yet taken
	room    int    // what the kernel takes before output queues; < 0: no limit
	owed    bool   // output queued and drained since: OnWritable is owed

	wantWritable bool
	paused       bool // by the module
	throttled    bool // by the loop, above the high watermark

	writeClosed bool
	draining    bool
	closing     bool // graceful close under way
	closed      bool
	aborted     bool
	reason      api.Reason
	err         error
	discarded   int

	ctx        any
	rng        *rand.Rand
	violations []string

	// connecting is set on a connection from Loop.Dial until the test
	// calls Connect or Fail; fd is the descriptor handed to Loop.Attach,
	// closed with the connection (-1: none).
	connecting bool
	fd         int

	tls *api.TLSInfo // what TLS reports; see SetTLS
}

var _ api.Conn = (*Conn)(nil)

// NewConn accepts a connection for h: it returns the fake, after running
// h.OnAccept on it.
func NewConn(h api.StreamHandler, opts ...Option) *Conn {
	s := newSettings(opts)
	l := s.loop
	if l == nil {
		l = NewLoop(opts...)
	}
	c := newConn(h, s, l)
	c.call(cbAccept)
	return c
}

// newConn makes a connection on l without running OnAccept.
func newConn(h api.StreamHandler, s settings, l *Loop) *Conn {
	c := &Conn{h: h, s: s, loop: l, room: s.room, fd: -1}
	c.rng = rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	l.track(c)
	return c
}

// --- The test's side: the client and the kernel. ---

// Feed delivers p as one read: it is appended to the unconsumed input and
// OnReadable runs. While reading is stopped (Paused, Throttled) the bytes
// wait in the kernel and arrive once reading resumes; once the connection
// is closing they are dropped, as the loop drops them.
func (c *Conn) Feed(p []byte) {
	if !c.testSide("Feed") {
		return
	}
	if c.eofFed {
		c.violation("Feed after FeedEOF: the client cannot send after half-closing")
		return
	}
	if c.connecting {
		c.violation("Feed before Connect: nothing arrives on a connection still connecting")
		return
	}
	if len(p) == 0 || c.closing || c.closed {
		return
	}
	if c.readStopped() || len(c.held) > 0 {
		c.held = append(c.held, p...)
		c.loop.settle()
		return
	}
	c.read(p)
	c.loop.settle()
}

// FeedString is Feed for a string.
func (c *Conn) FeedString(s string) { c.Feed([]byte(s)) }

// FeedSplit delivers p as several reads: of the given sizes (the rest, if
// any, as one more read), or at random points when no size is given. The
// random points come from the seed of WithSeed, so a failure replays.
func (c *Conn) FeedSplit(p []byte, sizes ...int) {
	if !c.testSide("FeedSplit") {
		return
	}
	if len(sizes) == 0 {
		for len(p) > 0 {
			// Mostly small fragments, now and then a big one: lines split
			// anywhere, and several lines in one read.
			most := min(len(p), 8)
			if c.rng.IntN(4) == 0 {
				most = len(p)
			}
			n := 1 + c.rng.IntN(most)
			c.Feed(p[:n])
			p = p[n:]
		}
		return
	}
	for _, n := range sizes {
		if n <= 0 {
			c.violation("FeedSplit size %d: a read returns at least one byte", n)
			return
		}
		if len(p) == 0 {
			return
		}
		n = min(n, len(p))
		c.Feed(p[:n])
		p = p[n:]
	}
	if len(p) > 0 {
		c.Feed(p)
	}
}

// FeedEOF delivers the client's half-close: InputClosed turns true and
// OnReadable runs, with whatever input is still unconsumed.
func (c *Conn) FeedEOF() {
	if !c.testSide("FeedEOF") {
		return
	}
	if c.eofFed {
		c.violation("FeedEOF twice")
		return
	}
	if c.connecting {
		c.violation("FeedEOF before Connect: nothing arrives on a connection still connecting")
		return
	}
	c.eofFed = true
	if c.closing || c.closed {
		return
	}
	if c.readStopped() {
		c.heldEOF = true
		return
	}
	c.eof()
	c.loop.settle()
}

// SetWritable sets how many more bytes the kernel takes before the module's
// output queues (Buffered > 0); negative means no limit, the default. It
// moves nothing that is already queued: Drain does.
func (c *Conn) SetWritable(n int) {
	if c.testSide("SetWritable") {
		c.room = n
	}
}

// Drain lets the client read n bytes (n < 0: everything, and the kernel
// takes any amount from then on): the kernel makes room for n more, takes
// queued output into it, and the loop reacts as to the socket turning
// writable: a graceful close completes once nothing is queued, reading
// resumes at the low watermark, and OnWritable runs when output that had
// queued has drained, or, while WantWritable(true), whenever nothing is
// queued and the kernel has room. Drain(0) is the socket turning writable
// without the client reading. It returns the bytes the kernel took.
func (c *Conn) Drain(n int) int {
	if !c.testSide("Drain") || c.closed || c.connecting {
		return 0
	}
	switch {
	case n < 0:
		c.room = -1
	case c.room >= 0:
		c.room += n
	}
	moved := c.flush()
	switch {
	case len(c.queue) > 0:
	case c.closing:
		c.closeNow(c.reason, c.err)
	case c.owed || (c.wantWritable && c.room != 0):
		c.owed = false
		c.call(cbWritable)
	}
	c.loop.settle()
	return moved
}

// Shutdown is the end of the daemon's drain (SIGTERM) for this
// connection, as the loop does it once a draining connection has been
// quiet: OnDrain runs when the module is an api.Drainer, and the
// connection then closes gracefully with api.ReasonShutdown unless the
// module closed it itself. (Until it is quiet, a draining connection is
// served as usual: keep feeding it before calling Shutdown.)
func (c *Conn) Shutdown() {
	if !c.testSide("Shutdown") || c.closing || c.closed || c.draining {
		return
	}
	c.draining = true
	if _, ok := c.h.(api.Drainer); ok {
		c.call(cbDrain)
	}
	c.closeFor(api.ReasonShutdown, nil)
	c.loop.settle()
}

// Terminate closes the connection as the loop does on its own (a reset by
// the peer, an idle timeout): at once, queued output discarded, OnClose run
// with reason and err.
func (c *Conn) Terminate(reason api.Reason, err error) {
	if c.testSide("Terminate") {
		c.closeNow(reason, err)
		c.loop.settle()
	}
}

// Connect completes the connect of a connection from Loop.Dial: OnAccept
// runs, then what the module wrote while connecting goes out (as far as
// the kernel has room), and OnWritable runs once it has, as the loop does.
// A connection the module closed while connecting gets no OnAccept: it
// only delivers what it had queued, then closes. On a connection that is
// closed already, Connect does nothing.
func (c *Conn) Connect() {
	if !c.testSide("Connect") || c.closed {
		return
	}
	if !c.connecting {
		c.violation("Connect on a connection that is not connecting (only Loop.Dial's are)")
		return
	}
	c.connecting = false
	if !c.closing {
		c.call(cbAccept)
	}
	if !c.closed && len(c.queue) > 0 {
		c.flush()
		switch {
		case len(c.queue) > 0:
		case c.closing:
			c.closeNow(c.reason, c.err)
		case c.owed:
			c.owed = false
			c.call(cbWritable)
		}
	}
	c.loop.settle()
}

// Fail fails the connect of a connection from Loop.Dial, as a refused or
// timed-out connect does: OnClose runs with api.ReasonError and err (nil
// means connection refused; api.ErrConnectTimeout is what a timeout
// gives). On a connection that is closed already, Fail does nothing.
func (c *Conn) Fail(err error) {
	if !c.testSide("Fail") || c.closed {
		return
	}
	if !c.connecting {
		c.violation("Fail on a connection that is not connecting (only Loop.Dial's are)")
		return
	}
	if err == nil {
		err = fmt.Errorf("connect: %w", syscall.ECONNREFUSED)
	}
	c.closeNow(api.ReasonError, err)
	c.loop.settle()
}

// Connecting reports whether the connection is from Loop.Dial and neither
// Connect nor Fail has been called yet.
func (c *Conn) Connecting() bool { return c.connecting }

// RunPending runs the functions submitted to the connection's loop; see
// Loop.RunPending.
func (c *Conn) RunPending() int { return c.loop.RunPending() }

// --- What the test inspects. ---

// Written returns a copy of the output the kernel has taken, in order:
// what the client reads.
func (c *Conn) Written() []byte { return append([]byte(nil), c.written...) }

// WrittenString is Written as a string.
func (c *Conn) WrittenString() string { return string(c.written) }

// TakeWritten returns Written and forgets it, so that the next call shows
// only newer output.
func (c *Conn) TakeWritten() []byte {
	w := c.Written()
	c.written = c.written[:0]
	return w
}

// ResetWritten forgets the output taken so far, without allocating; for
// benchmarks and allocation tests.
func (c *Conn) ResetWritten() { c.written = c.written[:0] }

// Unconsumed returns a copy of the input the module left unconsumed, which
// the loop keeps for the next OnReadable.
func (c *Conn) Unconsumed() []byte { return append([]byte(nil), c.buf...) }

// Paused reports whether the module has paused reading (PauseReading without
// ResumeReading since).
func (c *Conn) Paused() bool { return c.paused }

// Throttled reports whether the loop has stopped reading because queued
// output passed the high watermark (see WithWatermarks).
func (c *Conn) Throttled() bool { return c.throttled }

// WantsWritable reports the module's last WantWritable.
func (c *Conn) WantsWritable() bool { return c.wantWritable }

// WriteClosed reports whether the module half-closed (CloseWrite).
func (c *Conn) WriteClosed() bool { return c.writeClosed }

// Closing reports whether the connection is closing or closed: no more
// writes are taken.
func (c *Conn) Closing() bool { return c.closing || c.closed }

// Closed reports whether the connection is closed and OnClose has run.
func (c *Conn) Closed() bool { return c.closed }

// Aborted reports whether the connection closed without flushing: Abort,
// Terminate or the input bound.
func (c *Conn) Aborted() bool { return c.aborted }

// Discarded returns the queued output an abort threw away.
func (c *Conn) Discarded() int { return c.discarded }

// Reason returns the reason the connection closed, or is closing, with; ""
// while open.
func (c *Conn) Reason() api.Reason { return c.reason }

// Err returns the error the connection closed, or is closing, with.
func (c *Conn) Err() error { return c.err }

// Violations returns the contract violations and misuses reported so far.
func (c *Conn) Violations() []string { return append([]string(nil), c.violations...) }

// --- api.Conn: the module's side. ---

// Inbound implements api.Conn.
func (c *Conn) Inbound() []byte {
	c.moduleSide("Inbound")
	return c.buf[c.consumed:]
}

// Consume implements api.Conn. Consuming more than Inbound holds, or a
// negative count, is a violation; the fake then consumes everything.
func (c *Conn) Consume(n int) {
	c.moduleSide("Consume")
	if left := len(c.buf) - c.consumed; n < 0 || n > left {
		if !c.closed {
			c.violation("Consume(%d) with %d bytes inbound", n, left)
		}
		n = left
	}
	c.consumed += n
}

// InputClosed implements api.Conn.
func (c *Conn) InputClosed() bool { return c.inClosed }

// Write implements api.Conn: the kernel takes what it has room for, the
// rest queues (a copy: p is not kept). After Close, CloseFor, Abort or
// CloseWrite it fails with api.ErrClosed.
func (c *Conn) Write(p []byte) (int, error) {
	c.moduleSide("Write")
	if c.closed || c.closing || c.writeClosed {
		return 0, api.ErrClosed
	}
	total := len(p)
	if len(c.queue) == 0 && !c.connecting {
		take := len(p)
		if c.room >= 0 {
			take = min(take, c.room)
			c.room -= take
		}
		c.written = append(c.written, p[:take]...)
		p = p[take:]
	}
	if len(p) > 0 {
		c.queue = append(c.queue, p...)
		c.owed = true
		if c.s.high > 0 && len(c.queue) > c.s.high {
			c.throttled = true
		}
	}
	return total, nil
}

// Buffered implements api.Conn.
func (c *Conn) Buffered() int { return len(c.queue) }

// WantWritable implements api.Conn.
func (c *Conn) WantWritable(on bool) {
	c.moduleSide("WantWritable")
	c.wantWritable = on
}

// PauseReading implements api.Conn.
func (c *Conn) PauseReading() {
	c.moduleSide("PauseReading")
	c.paused = true
}

// ResumeReading implements api.Conn. Input that arrived meanwhile is
// delivered once the current callback returns.
func (c *Conn) ResumeReading() {
	c.moduleSide("ResumeReading")
	c.paused = false
}

// CloseWrite implements api.Conn.
func (c *Conn) CloseWrite() error {
	c.moduleSide("CloseWrite")
	if c.closed || c.closing {
		return api.ErrClosed
	}
	c.writeClosed = true
	return nil
}

// Close implements api.Conn: a graceful close with api.ReasonShutdown while
// the daemon drains, api.ReasonClient once the client half-closed,
// api.ReasonDone otherwise. Closing twice is harmless.
func (c *Conn) Close() error {
	c.moduleSide("Close")
	reason := api.ReasonDone
	switch {
	case c.draining:
		reason = api.ReasonShutdown
	case c.inClosed:
		reason = api.ReasonClient
	}
	c.closeFor(reason, nil)
	return nil
}

// CloseFor implements api.Conn: queued output is still delivered (by Drain)
// before the connection closes.
func (c *Conn) CloseFor(reason api.Reason, err error) {
	c.moduleSide("CloseFor")
	c.closeFor(reason, err)
}

// Abort implements api.Conn: queued output is discarded.
func (c *Conn) Abort(reason api.Reason, err error) {
	c.moduleSide("Abort")
	c.closeNow(reason, err)
}

// Listener implements api.Conn.
func (c *Conn) Listener() string { return c.s.listener }

// LocalAddr implements api.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.s.local }

// RemoteAddr implements api.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.s.remote }

// Context implements api.Conn.
func (c *Conn) Context() any { return c.ctx }

// SetContext implements api.Conn.
func (c *Conn) SetContext(v any) {
	c.moduleSide("SetContext")
	c.ctx = v
}

// Loop implements api.Conn.
func (c *Conn) Loop() api.Loop { return c.loop }

// --- Internals. ---

func (c *Conn) readStopped() bool { return c.paused || c.throttled }

// read is one read of p by the loop.
func (c *Conn) read(p []byte) {
	c.buf = append(c.buf, p...)
	c.call(cbReadable)
}

// eof is the read that returns end-of-file.
func (c *Conn) eof() {
	c.inClosed = true
	c.call(cbReadable)
}

// call runs one callback as the loop does: on the loop, then keeping what
// the module left unconsumed.
func (c *Conn) call(k callback) {
	c.loop.enter()
	c.consumed = 0
	switch k {
	case cbAccept:
		c.h.OnAccept(c)
	case cbReadable:
		c.h.OnReadable(c)
	case cbWritable:
		c.h.OnWritable(c)
	case cbDrain:
		if d, ok := c.h.(api.Drainer); ok {
			d.OnDrain(c)
		}
	}
	c.keepRest()
	c.loop.leave()
}

// keepRest moves the unconsumed input to the other buffer and poisons the
// one the module saw.
func (c *Conn) keepRest() {
	if c.closed {
		return
	}
	rest := c.buf[c.consumed:]
	c.spare = append(c.spare[:0], rest...)
	for i := range c.buf {
		c.buf[i] = poison
	}
	c.buf, c.spare = c.spare, c.buf[:0]
	c.consumed = 0
	if c.s.maxInput > 0 && len(c.buf) > c.s.maxInput {
		c.closeNow(api.ReasonError, fmt.Errorf("apitest: more than %d bytes of unconsumed input", c.s.maxInput))
	}
}

// flush moves queued output into the kernel's room.
func (c *Conn) flush() int {
	take := len(c.queue)
	if c.room >= 0 {
		take = min(take, c.room)
		c.room -= take
	}
	c.written = append(c.written, c.queue[:take]...)
	c.queue = c.queue[:copy(c.queue, c.queue[take:])]
	if c.throttled && len(c.queue) <= c.s.low {
		c.throttled = false
	}
	return take
}

// settle delivers input held while reading was stopped, once it is not;
// it reports whether it delivered anything.
func (c *Conn) settle() bool {
	if c.closed || c.closing || c.readStopped() {
		return false
	}
	switch {
	case len(c.held) > 0:
		p := c.held
		c.held = nil
		c.read(p)
		return true
	case c.heldEOF:
		c.heldEOF = false
		c.eof()
		return true
	}
	return false
}

func (c *Conn) closeFor(reason api.Reason, err error) {
	if c.closed || c.closing {
		return
	}
	c.closing = true
	c.reason, c.err = reason, err
	c.paused, c.throttled, c.wantWritable = false, false, false
	if len(c.queue) == 0 {
		c.closeNow(reason, err)
	}
}

// closeNow closes the descriptor: queued output is discarded (none is left
// after a graceful close) and OnClose runs, once.
func (c *Conn) closeNow(reason api.Reason, err error) {
	if c.closed {
		return
	}
	if !c.closing || len(c.queue) > 0 {
		c.aborted = true
	}
	c.closed, c.closing, c.connecting = true, false, false
	c.reason, c.err = reason, err
	if c.fd >= 0 {
		_ = unix.Close(c.fd) // Attach handed it over: the loop closes it
		c.fd = -1
	}
	c.discarded += len(c.queue)
	c.queue, c.buf, c.spare, c.held = nil, nil, nil, nil
	c.consumed = 0
	c.loop.enter()
	c.h.OnClose(c, reason, err)
	c.loop.leave()
}

// testSide checks that a driving method is called by the test, not from a
// callback, which would make the fake re-enter the module.
func (c *Conn) testSide(method string) bool {
	if c.loop.onLoop() {
		c.violation("%s called from inside a callback; the test drives the connection, not the module", method)
		return false
	}
	return true
}

// moduleSide checks the threading rule: only the loop calls the module's
// side of the contract.
func (c *Conn) moduleSide(method string) {
	if !c.loop.onLoop() {
		c.violation("Conn.%s called outside a callback or a Loop.Submit function: only the loop may call it", method)
	}
}

func (c *Conn) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...) + culprit()
	c.violations = append(c.violations, msg)
	c.s.fail("%s", msg)
}
