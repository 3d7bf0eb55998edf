package apitest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// handler is a module made of functions, so that each test writes only the
// behaviour it checks. It counts its callbacks.
type handler struct {
	accept, readable, writable func(c api.Conn)

	reads, writables int
	closes           []api.Reason
	closeErrs        []error
}

func (h *handler) OnAccept(c api.Conn) {
	if h.accept != nil {
		h.accept(c)
	}
}

func (h *handler) OnReadable(c api.Conn) {
	h.reads++
	if h.readable != nil {
		h.readable(c)
	}
}

func (h *handler) OnWritable(c api.Conn) {
	h.writables++
	if h.writable != nil {
		h.writable(c)
	}
}

func (h *handler) OnClose(_ api.Conn, r api.Reason, err error) {
	h.closes = append(h.closes, r)
	h.closeErrs = append(h.closeErrs, err)
}

// drainer adds OnDrain.
type drainer struct {
	handler
	drain  func(c api.Conn)
	drains int
}

func (d *drainer) OnDrain(c api.Conn) {
	d.drains++
	if d.drain != nil {
		d.drain(c)
	}
}

// lineEcho echoes complete lines, and everything once the client half-closes.
func lineEcho(c api.Conn) {
	in := c.Inbound()
	n := bytes.LastIndexByte(in, '\n') + 1
	if c.InputClosed() {
		n = len(in)
	}
	_, _ = c.Write(in[:n])
	c.Consume(n)
	if c.InputClosed() {
		_ = c.Close()
	}
}

// fakeTB records what the kit reports, so that its failures can be tested
// without failing this test.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Error(args ...any) { f.errs = append(f.errs, fmt.Sprint(args...)) }

func (f *fakeTB) reported(t *testing.T, substr string) {
	t.Helper()
	for _, e := range f.errs {
		if strings.Contains(e, substr) {
			return
		}
	}
	t.Errorf("no report containing %q; got %q", substr, f.errs)
}

func TestAcceptRunsOnAccept(t *testing.T) {
	h := &handler{accept: func(c api.Conn) { _, _ = c.Write([]byte("hello\r\n")) }}
	c := apitest.NewConn(h, apitest.WithT(t))
	if got := c.WrittenString(); got != "hello\r\n" {
		t.Fatalf("Written = %q, want the greeting written in OnAccept", got)
	}
}

func TestUnconsumedInputPrecedesNewer(t *testing.T) {
	var seen []string
	h := &handler{readable: func(c api.Conn) {
		seen = append(seen, string(c.Inbound()))
		lineEcho(c)
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("ab")
	c.FeedString("c\nd")
	c.FeedString("e\n")
	want := []string{"ab", "abc\nd", "de\n"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("Inbound per read = %q, want %q", seen, want)
	}
	if got := c.WrittenString(); got != "abc\nde\n" {
		t.Errorf("Written = %q", got)
	}
	if u := c.Unconsumed(); len(u) != 0 {
		t.Errorf("Unconsumed = %q, want nothing", u)
	}
}

func TestInboundIsPoisonedAfterTheCallback(t *testing.T) {
	var kept []byte
	h := &handler{readable: func(c api.Conn) { kept = c.Inbound() }}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("secret")
	if string(kept) == "secret" {
		t.Fatal("a slice kept past the callback still reads the input; the loop would have overwritten it")
	}
	if got := string(c.Unconsumed()); got != "secret" {
		t.Fatalf("Unconsumed = %q: poisoning must not touch what the loop keeps", got)
	}
}

func TestFeedSplitGivenSizes(t *testing.T) {
	var reads []int
	h := &handler{readable: func(c api.Conn) {
		reads = append(reads, len(c.Inbound()))
		c.Consume(len(c.Inbound()))
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedSplit([]byte("0123456789"), 1, 3, 2)
	if want := []int{1, 3, 2, 4}; fmt.Sprint(reads) != fmt.Sprint(want) {
		t.Errorf("reads = %v, want %v (the rest in one last read)", reads, want)
	}
}

func TestFeedSplitRandomIsRepeatableAndComplete(t *testing.T) {
	split := func(seed uint64) []string {
		var reads []string
		h := &handler{readable: func(c api.Conn) {
			reads = append(reads, string(c.Inbound()))
			c.Consume(len(c.Inbound()))
		}}
		c := apitest.NewConn(h, apitest.WithT(t), apitest.WithSeed(seed))
		c.FeedSplit([]byte(strings.Repeat("abcdefghij", 20)))
		return reads
	}
	a, b := split(7), split(7)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed split differently")
	}
	if strings.Join(a, "") != strings.Repeat("abcdefghij", 20) {
		t.Fatal("random split lost or reordered bytes")
	}
	if len(a) < 3 {
		t.Fatalf("only %d reads: not much of a split", len(a))
	}
}

func TestFeedEOFDeliversTheRest(t *testing.T) {
	h := &handler{readable: lineEcho}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("one\ntwo")
	if got := c.WrittenString(); got != "one\n" {
		t.Fatalf("before EOF Written = %q", got)
	}
	c.FeedEOF()
	if got := c.WrittenString(); got != "one\ntwo" {
		t.Errorf("after EOF Written = %q", got)
	}
	if !c.InputClosed() || !c.Closed() || c.Reason() != api.ReasonClient || c.Aborted() {
		t.Errorf("InputClosed %v Closed %v Reason %q Aborted %v", c.InputClosed(), c.Closed(), c.Reason(), c.Aborted())
	}
	if len(h.closes) != 1 || h.closes[0] != api.ReasonClient {
		t.Errorf("OnClose calls = %v", h.closes)
	}
}

func TestPartialWriteQueuesAndDrains(t *testing.T) {
	var n int
	var err error
	h := &handler{readable: func(c api.Conn) {
		n, err = c.Write(c.Inbound())
		c.Consume(len(c.Inbound()))
	}}
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithWritable(3))
	c.FeedString("hello")
	if n != 5 || err != nil {
		t.Fatalf("Write = %d, %v; want 5, nil: queued bytes are accepted", n, err)
	}
	if got := c.WrittenString(); got != "hel" || c.Buffered() != 2 {
		t.Fatalf("Written %q Buffered %d, want %q 2", got, c.Buffered(), "hel")
	}
	if moved := c.Drain(1); moved != 1 || c.WrittenString() != "hell" || h.writables != 0 {
		t.Fatalf("Drain(1) moved %d, Written %q, OnWritable %d times", moved, c.WrittenString(), h.writables)
	}
	c.FeedString("!") // queued behind the rest: order is kept
	c.Drain(-1)
	if got := c.WrittenString(); got != "hello!" || c.Buffered() != 0 {
		t.Fatalf("Written %q Buffered %d", got, c.Buffered())
	}
	if h.writables != 1 {
		t.Errorf("OnWritable ran %d times once the queue drained, want 1", h.writables)
	}
	c.Drain(-1)
	if h.writables != 1 {
		t.Errorf("OnWritable ran again with nothing owed and WantWritable off")
	}
}

func TestWantWritableCallsOnWritableOnEveryDrain(t *testing.T) {
	h := &handler{
		accept:   func(c api.Conn) { c.WantWritable(true) },
		writable: func(c api.Conn) { _, _ = c.Write([]byte("0123456789")) },
	}
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithWritable(0))
	c.Drain(0)
	if h.writables != 0 {
		t.Fatal("OnWritable ran while the kernel had no room")
	}
	for i := 0; i < 3; i++ {
		c.Drain(10)
	}
	if h.writables != 3 || c.WrittenString() != strings.Repeat("0123456789", 3) || c.Buffered() != 0 {
		t.Fatalf("OnWritable %d times, Written %q, Buffered %d", h.writables, c.WrittenString(), c.Buffered())
	}
	c.Drain(5) // room for half a chunk: the rest queues
	c.Drain(0) // writable, but output is queued: no OnWritable
	if h.writables != 4 || c.Buffered() != 5 {
		t.Fatalf("OnWritable %d times, Buffered %d", h.writables, c.Buffered())
	}
	if !c.WantsWritable() {
		t.Error("WantsWritable = false")
	}
}

func TestGracefulCloseDeliversQueuedOutput(t *testing.T) {
	var after error
	h := &handler{readable: func(c api.Conn) {
		_, _ = c.Write([]byte("bye\n"))
		c.Consume(len(c.Inbound()))
		_ = c.Close()
		_, after = c.Write([]byte("more"))
	}}
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithWritable(0))
	c.FeedString("x")
	if !errors.Is(after, api.ErrClosed) {
		t.Errorf("Write after Close = %v, want api.ErrClosed", after)
	}
	if !c.Closing() || c.Closed() || len(h.closes) != 0 {
		t.Fatalf("Closing %v Closed %v OnClose %d: a graceful close waits for its output", c.Closing(), c.Closed(), len(h.closes))
	}
	c.FeedString("ignored") // a closing connection reads no more
	if h.reads != 1 {
		t.Errorf("OnReadable ran on a closing connection")
	}
	c.Drain(-1)
	if got := c.WrittenString(); got != "bye\n" {
		t.Errorf("Written = %q, want the queued output and nothing after Close", got)
	}
	if !c.Closed() || c.Aborted() || c.Reason() != api.ReasonDone || len(h.closes) != 1 {
		t.Errorf("Closed %v Aborted %v Reason %q OnClose %v", c.Closed(), c.Aborted(), c.Reason(), h.closes)
	}
}

func TestAbortDiscardsQueuedOutput(t *testing.T) {
	boom := errors.New("boom")
	h := &handler{readable: func(c api.Conn) {
		_, _ = c.Write([]byte("lost"))
		c.Abort(api.ReasonError, boom)
	}}
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithWritable(0))
	c.FeedString("x")
	if !c.Closed() || !c.Aborted() || c.Discarded() != 4 || c.WrittenString() != "" {
		t.Errorf("Closed %v Aborted %v Discarded %d Written %q", c.Closed(), c.Aborted(), c.Discarded(), c.WrittenString())
	}
	if c.Reason() != api.ReasonError || !errors.Is(c.Err(), boom) || !errors.Is(h.closeErrs[0], boom) {
		t.Errorf("Reason %q Err %v OnClose err %v", c.Reason(), c.Err(), h.closeErrs)
	}
	if c.Drain(-1) != 0 || c.WrittenString() != "" {
		t.Error("aborted output came out after all")
	}
}

// TestWriteAfterCloseFails is the kit catching a module that writes to a
// connection it closed: the write fails and nothing reaches the client.
func TestWriteAfterCloseFails(t *testing.T) {
	var errs []error
	h := &handler{readable: func(c api.Conn) {
		c.Consume(len(c.Inbound()))
		_ = c.Close()
		_, err := c.Write([]byte("too late"))
		errs = append(errs, err)
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("x")
	if len(errs) != 1 || !errors.Is(errs[0], api.ErrClosed) {
		t.Fatalf("Write after Close returned %v, want api.ErrClosed", errs)
	}
	if c.WrittenString() != "" {
		t.Fatalf("the client read %q written after Close", c.WrittenString())
	}
	// In OnClose too: the Conn may not be written to any more.
	var inClose error
	hc := &closeWriter{err: &inClose}
	c2 := apitest.NewConn(hc, apitest.WithT(t))
	c2.Terminate(api.ReasonIdleTimeout, nil)
	if !errors.Is(inClose, api.ErrClosed) {
		t.Fatalf("Write in OnClose returned %v, want api.ErrClosed", inClose)
	}
}

type closeWriter struct {
	handler
	err *error
}

func (w *closeWriter) OnClose(c api.Conn, _ api.Reason, _ error) {
	_, *w.err = c.Write([]byte("x"))
}

func TestOnCloseRunsOnce(t *testing.T) {
	h := &handler{readable: func(c api.Conn) {
		_ = c.Close()
		_ = c.Close()
		c.CloseFor(api.ReasonError, nil)
		c.Abort(api.ReasonError, nil)
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("x")
	c.Terminate(api.ReasonIdleTimeout, nil)
	c.Shutdown()
	if len(h.closes) != 1 || h.closes[0] != api.ReasonDone {
		t.Errorf("OnClose calls = %v, want exactly one with %q", h.closes, api.ReasonDone)
	}
}

func TestCloseReasons(t *testing.T) {
	closer := func(c api.Conn) { _ = c.Close() }
	tests := []struct {
		name  string
		drive func(c *apitest.Conn)
		want  api.Reason
	}{
		{"module done", func(c *apitest.Conn) { c.FeedString("x") }, api.ReasonDone},
		{"client half-closed", func(c *apitest.Conn) { c.FeedEOF() }, api.ReasonClient},
		{"idle", func(c *apitest.Conn) { c.Terminate(api.ReasonIdleTimeout, nil) }, api.ReasonIdleTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := apitest.NewConn(&handler{readable: closer}, apitest.WithT(t))
			tt.drive(c)
			if c.Reason() != tt.want || !c.Closed() {
				t.Errorf("Reason = %q (closed %v), want %q", c.Reason(), c.Closed(), tt.want)
			}
		})
	}
	t.Run("drain", func(t *testing.T) {
		d := &drainer{drain: closer}
		c := apitest.NewConn(d, apitest.WithT(t))
		c.Shutdown()
		if d.drains != 1 || c.Reason() != api.ReasonShutdown {
			t.Errorf("OnDrain %d times, Reason %q", d.drains, c.Reason())
		}
	})
}

func TestShutdownClosesWhatOnDrainLeavesOpen(t *testing.T) {
	d := &drainer{drain: func(c api.Conn) {
		_, _ = c.Write(c.Inbound())
		c.Consume(len(c.Inbound()))
	}}
	c := apitest.NewConn(d, apitest.WithT(t), apitest.WithWritable(0))
	c.FeedString("partial")
	c.Shutdown()
	if c.Closed() || !c.Closing() {
		t.Fatal("closed before its output was read")
	}
	c.Drain(-1)
	if c.WrittenString() != "partial" || !c.Closed() || c.Reason() != api.ReasonShutdown || c.Aborted() {
		t.Errorf("Written %q Closed %v Reason %q Aborted %v", c.WrittenString(), c.Closed(), c.Reason(), c.Aborted())
	}

	plain := &handler{}
	c = apitest.NewConn(plain, apitest.WithT(t))
	c.Shutdown()
	if !c.Closed() || c.Reason() != api.ReasonShutdown {
		t.Errorf("without OnDrain: Closed %v Reason %q", c.Closed(), c.Reason())
	}
}

func TestCloseWrite(t *testing.T) {
	var err error
	h := &handler{
		accept: func(c api.Conn) {
			_, _ = c.Write([]byte("banner"))
			_ = c.CloseWrite()
			_, err = c.Write([]byte("x"))
		},
		readable: func(c api.Conn) { c.Consume(len(c.Inbound())) },
	}
	c := apitest.NewConn(h, apitest.WithT(t))
	if !c.WriteClosed() || c.Closing() || !errors.Is(err, api.ErrClosed) {
		t.Errorf("WriteClosed %v Closing %v, Write after CloseWrite = %v", c.WriteClosed(), c.Closing(), err)
	}
	c.FeedString("still read")
	if h.reads != 1 {
		t.Error("input stopped after CloseWrite")
	}
}

func TestPausedInputWaitsInTheKernel(t *testing.T) {
	var seen []string
	h := &handler{readable: func(c api.Conn) {
		seen = append(seen, string(c.Inbound()))
		c.Consume(len(c.Inbound()))
		if len(seen) == 1 {
			c.PauseReading()
		}
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("a")
	if !c.Paused() {
		t.Fatal("Paused = false after PauseReading")
	}
	c.FeedString("b")
	c.FeedString("c")
	c.FeedEOF()
	if len(seen) != 1 || c.InputClosed() {
		t.Fatalf("OnReadable ran while paused: %q, InputClosed %v", seen, c.InputClosed())
	}
	// The module resumes from work it handed to the loop.
	_ = c.Loop().Submit(func() { c.ResumeReading() })
	if ran := c.RunPending(); ran != 1 {
		t.Fatalf("RunPending ran %d", ran)
	}
	if want := []string{"a", "bc", ""}; fmt.Sprint(seen) != fmt.Sprint(want) || !c.InputClosed() {
		t.Fatalf("reads = %q, want %q, then EOF (InputClosed %v)", seen, want, c.InputClosed())
	}
}

func TestThrottleAtTheHighWatermark(t *testing.T) {
	h := &handler{readable: func(c api.Conn) {
		_, _ = c.Write(c.Inbound())
		c.Consume(len(c.Inbound()))
	}}
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithWritable(0), apitest.WithWatermarks(4, 2))
	c.FeedString("12345")
	if !c.Throttled() || c.Paused() {
		t.Fatalf("Throttled %v Paused %v with 5 bytes queued above 4", c.Throttled(), c.Paused())
	}
	c.FeedString("6")
	if h.reads != 1 {
		t.Fatal("read while throttled")
	}
	c.Drain(2)
	if !c.Throttled() {
		t.Fatal("resumed above the low watermark")
	}
	c.Drain(1)
	if c.Throttled() || h.reads != 2 {
		t.Fatalf("Throttled %v reads %d after draining to the low watermark", c.Throttled(), h.reads)
	}
	c.Drain(-1)
	if got := c.WrittenString(); got != "123456" {
		t.Errorf("Written = %q", got)
	}
}

func TestMaxInputAborts(t *testing.T) {
	h := &handler{} // consumes nothing
	c := apitest.NewConn(h, apitest.WithT(t), apitest.WithMaxInput(4))
	c.FeedString("1234")
	if c.Closed() {
		t.Fatal("closed at the bound")
	}
	c.FeedString("5")
	if !c.Closed() || c.Reason() != api.ReasonError || !c.Aborted() {
		t.Errorf("Closed %v Reason %q Aborted %v past the bound", c.Closed(), c.Reason(), c.Aborted())
	}
}

func TestFeedAfterCloseIsDropped(t *testing.T) {
	h := &handler{readable: func(c api.Conn) { c.Abort(api.ReasonError, nil) }}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("x")
	c.FeedString("y")
	c.FeedEOF()
	if h.reads != 1 {
		t.Errorf("OnReadable ran %d times, want 1", h.reads)
	}
}

func TestListenerAndAddresses(t *testing.T) {
	local := &net.UnixAddr{Name: "/run/netd.sock", Net: "unix"}
	remote := &net.UnixAddr{Name: "@peer", Net: "unix"}
	c := apitest.NewConn(&handler{}, apitest.WithT(t), apitest.WithListener("front"),
		apitest.WithLocalAddr(local), apitest.WithRemoteAddr(remote))
	if c.Listener() != "front" || c.LocalAddr() != local || c.RemoteAddr() != remote {
		t.Errorf("Listener %q Local %v Remote %v", c.Listener(), c.LocalAddr(), c.RemoteAddr())
	}
	d := apitest.NewConn(&handler{})
	if d.Listener() != apitest.DefaultListener || d.RemoteAddr() == nil || d.LocalAddr() == nil {
		t.Errorf("defaults: Listener %q Local %v Remote %v", d.Listener(), d.LocalAddr(), d.RemoteAddr())
	}
}

func TestContext(t *testing.T) {
	h := &handler{accept: func(c api.Conn) { c.SetContext(42) }}
	c := apitest.NewConn(h, apitest.WithT(t))
	if c.Context() != 42 {
		t.Errorf("Context = %v", c.Context())
	}
}

func TestLoopSubmitFromAnotherGoroutine(t *testing.T) {
	var c *apitest.Conn
	var wg sync.WaitGroup
	h := &handler{readable: func(conn api.Conn) {
		conn.Consume(len(conn.Inbound()))
		wg.Add(1)
		go func() { // a lookup that must not block the loop
			defer wg.Done()
			_ = conn.Loop().Submit(func() { _, _ = conn.Write([]byte("answer\n")) })
		}()
	}}
	c = apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("question\n")
	wg.Wait()
	if c.WrittenString() != "" {
		t.Fatal("a submitted function ran before RunPending")
	}
	if ran := c.RunPending(); ran != 1 || c.WrittenString() != "answer\n" {
		t.Fatalf("RunPending ran %d, Written %q", ran, c.WrittenString())
	}
}

func TestLoop(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	start := l.Now()
	l.Advance(time.Second)
	if got := l.Now().Sub(start); got != time.Second {
		t.Errorf("Advance moved the clock %v", got)
	}
	at := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	l.SetNow(at)
	if !l.Now().Equal(at) {
		t.Errorf("Now = %v after SetNow", l.Now())
	}
	var order []int
	_ = l.Submit(func() {
		order = append(order, 1)
		_ = l.Submit(func() { order = append(order, 3) })
	})
	_ = l.Submit(func() { order = append(order, 2) })
	if l.Pending() != 2 {
		t.Errorf("Pending = %d", l.Pending())
	}
	if ran := l.RunPending(); ran != 3 || fmt.Sprint(order) != "[1 2 3]" {
		t.Errorf("RunPending ran %d in order %v", ran, order)
	}
	l.Stop()
	if err := l.Submit(func() {}); !errors.Is(err, api.ErrLoopClosed) {
		t.Errorf("Submit after Stop = %v, want api.ErrLoopClosed", err)
	}
}

// TestSharedLoop is two connections on one loop, as a proxy has them: a
// callback on one may drive the other.
func TestSharedLoop(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	up := apitest.NewConn(&handler{}, apitest.WithT(t), apitest.WithLoop(l))
	down := apitest.NewConn(&handler{readable: func(c api.Conn) {
		_, _ = up.Write(c.Inbound())
		c.Consume(len(c.Inbound()))
	}}, apitest.WithT(t), apitest.WithLoop(l))
	down.FeedString("forwarded")
	if up.WrittenString() != "forwarded" || up.Loop() != down.Loop() {
		t.Errorf("upstream got %q", up.WrittenString())
	}
}

func TestViolationsFailTheTest(t *testing.T) {
	t.Run("consume too much", func(t *testing.T) {
		tb := &fakeTB{}
		c := apitest.NewConn(&handler{readable: func(c api.Conn) { c.Consume(10) }}, apitest.WithT(tb))
		c.FeedString("abc")
		tb.reported(t, "Consume(10) with 3 bytes inbound")
		if len(c.Violations()) != 1 || len(c.Unconsumed()) != 0 {
			t.Errorf("Violations %q, Unconsumed %q", c.Violations(), c.Unconsumed())
		}
	})
	t.Run("negative consume", func(t *testing.T) {
		tb := &fakeTB{}
		c := apitest.NewConn(&handler{readable: func(c api.Conn) { c.Consume(-1) }}, apitest.WithT(tb))
		c.FeedString("abc")
		tb.reported(t, "Consume(-1)")
	})
	t.Run("write from a goroutine", func(t *testing.T) {
		// The goroutine writes once the callback has returned: written
		// while it runs, the race detector reports it instead.
		tb := &fakeTB{}
		returned, done := make(chan struct{}), make(chan struct{})
		h := &handler{readable: func(c api.Conn) {
			go func() { // wrong: only the loop may write
				defer close(done)
				<-returned
				_, _ = c.Write([]byte("x"))
			}()
		}}
		c := apitest.NewConn(h, apitest.WithT(tb))
		c.FeedString("go")
		close(returned)
		<-done
		tb.reported(t, "Conn.Write called outside a callback")
		tb.reported(t, "conn_test.go") // names the offending line
	})
	t.Run("test drives from a callback", func(t *testing.T) {
		tb := &fakeTB{}
		var c *apitest.Conn
		h := &handler{readable: func(api.Conn) { c.FeedString("again") }}
		c = apitest.NewConn(h, apitest.WithT(tb))
		c.FeedString("x")
		tb.reported(t, "Feed called from inside a callback")
	})
	t.Run("feed after EOF", func(t *testing.T) {
		tb := &fakeTB{}
		c := apitest.NewConn(&handler{}, apitest.WithT(tb))
		c.FeedEOF()
		c.FeedString("x")
		tb.reported(t, "Feed after FeedEOF")
	})
	t.Run("nil submit", func(t *testing.T) {
		tb := &fakeTB{}
		l := apitest.NewLoop(apitest.WithT(tb))
		_ = l.Submit(nil)
		l.RunPending()
		tb.reported(t, "nil func")
	})
	t.Run("without WithT it panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "Consume(5)") {
				t.Errorf("recovered %v, want a panic naming the violation", r)
			}
		}()
		c := apitest.NewConn(&handler{readable: func(c api.Conn) { c.Consume(5) }})
		c.FeedString("x")
	})
}

func TestTakeAndResetWritten(t *testing.T) {
	c := apitest.NewConn(&handler{readable: lineEcho}, apitest.WithT(t))
	c.FeedString("a\n")
	if got := string(c.TakeWritten()); got != "a\n" {
		t.Fatalf("TakeWritten = %q", got)
	}
	c.FeedString("b\n")
	if got := string(c.Written()); got != "b\n" {
		t.Fatalf("Written after Take = %q", got)
	}
	c.ResetWritten()
	if len(c.Written()) != 0 {
		t.Fatal("ResetWritten kept output")
	}
}

// TestFeedAllocatesNothingWhenWarm keeps the fake out of the allocation
// tests of the modules it drives.
func TestFeedAllocatesNothingWhenWarm(t *testing.T) {
	c := apitest.NewConn(&handler{readable: lineEcho}, apitest.WithT(t))
	line := []byte("a line of text\nand a partial one")
	allocs := testing.AllocsPerRun(100, func() {
		c.Feed(line)
		c.ResetWritten()
	})
	if allocs != 0 {
		t.Errorf("Feed allocates %v times per run", allocs)
	}
}

func TestSetWritable(t *testing.T) {
	h := &handler{readable: func(c api.Conn) {
		_, _ = c.Write(c.Inbound())
		c.Consume(len(c.Inbound()))
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("free ")
	c.SetWritable(2)
	c.FeedString("tight")
	if got := c.WrittenString(); got != "free ti" || c.Buffered() != 3 {
		t.Fatalf("Written %q Buffered %d", got, c.Buffered())
	}
	c.SetWritable(-1) // room, but nothing moves until the socket is writable
	if c.Buffered() != 3 {
		t.Fatal("SetWritable moved queued output")
	}
	c.Drain(0)
	if got := c.WrittenString(); got != "free tight" || h.writables != 1 {
		t.Fatalf("Written %q, OnWritable %d", got, h.writables)
	}
}

func TestCloseWriteAfterClose(t *testing.T) {
	var err error
	h := &handler{readable: func(c api.Conn) {
		_ = c.Close()
		err = c.CloseWrite()
	}}
	c := apitest.NewConn(h, apitest.WithT(t))
	c.FeedString("x")
	if !errors.Is(err, api.ErrClosed) {
		t.Errorf("CloseWrite after Close = %v, want api.ErrClosed", err)
	}
}

func TestFeedSplitBadSize(t *testing.T) {
	tb := &fakeTB{}
	c := apitest.NewConn(&handler{}, apitest.WithT(tb))
	c.FeedSplit([]byte("abc"), 1, 0)
	tb.reported(t, "FeedSplit size 0")
	if got := string(c.Unconsumed()); got != "a" {
		t.Errorf("Unconsumed = %q: the reads before the bad size happen", got)
	}
}

func TestManyConnectionsOnOneLoop(t *testing.T) {
	l := apitest.NewLoop(apitest.WithT(t))
	for i := 0; i < 1000; i++ {
		c := apitest.NewConn(&handler{readable: lineEcho}, apitest.WithT(t), apitest.WithLoop(l))
		c.FeedString("bye")
		c.FeedEOF()
		if c.WrittenString() != "bye" || !c.Closed() {
			t.Fatalf("connection %d: Written %q Closed %v", i, c.WrittenString(), c.Closed())
		}
	}
}
