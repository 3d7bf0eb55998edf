package relay_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/internal/relay"
)

// oneWay relays src to dst, as proxy and exec do in each direction: src's
// OnReadable forwards and carries the end of input across as a
// half-close, dst's OnWritable resumes src.
type oneWay struct {
	d        relay.Direction
	src, dst *apitest.Conn
	ends     int // times Forward reported the end of input
}

type srcSide struct{ w *oneWay }

func (s srcSide) OnAccept(api.Conn) {}
func (s srcSide) OnReadable(c api.Conn) {
	if s.w.d.Forward(c, s.w.dst) {
		s.w.ends++
		_ = s.w.dst.CloseWrite()
	}
}
func (s srcSide) OnWritable(api.Conn)                 {}
func (s srcSide) OnClose(api.Conn, api.Reason, error) {}

type dstSide struct{ w *oneWay }

func (s dstSide) OnAccept(api.Conn)                   {}
func (s dstSide) OnReadable(c api.Conn)               { c.Consume(len(c.Inbound())) }
func (s dstSide) OnWritable(api.Conn)                 { s.w.d.Resume(s.w.src) }
func (s dstSide) OnClose(api.Conn, api.Reason, error) {}

func newOneWay(t *testing.T, writable int) *oneWay {
	l := apitest.NewLoop(apitest.WithT(t))
	w := &oneWay{}
	w.dst = apitest.NewConn(dstSide{w}, apitest.WithLoop(l), apitest.WithT(t), apitest.WithWritable(writable))
	w.src = apitest.NewConn(srcSide{w}, apitest.WithLoop(l), apitest.WithT(t))
	return w
}

func TestForwardCarriesBytesAndTheEnd(t *testing.T) {
	w := newOneWay(t, -1)
	w.src.FeedSplit([]byte("hello, relay\n"), 1, 5, 3)
	if got := w.dst.WrittenString(); got != "hello, relay\n" {
		t.Fatalf("dst got %q", got)
	}
	if len(w.src.Unconsumed()) != 0 || w.src.Paused() || w.d.Ended() {
		t.Fatalf("src: unconsumed %q, paused %v, ended %v", w.src.Unconsumed(), w.src.Paused(), w.d.Ended())
	}
	w.src.FeedEOF()
	if w.ends != 1 || !w.d.Ended() || !w.dst.WriteClosed() {
		t.Fatalf("after EOF: ends %d, Ended %v, dst WriteClosed %v", w.ends, w.d.Ended(), w.dst.WriteClosed())
	}
	if w.d.End() {
		t.Error("End after Forward carried the end: true, want false (once only)")
	}
}

func TestHighWaterPausesAndDrainResumes(t *testing.T) {
	w := newOneWay(t, 0) // dst's kernel takes nothing
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	fed := 0
	for !w.src.Paused() {
		if fed > 2*relay.HighWater {
			t.Fatalf("src not paused with %d bytes queued on dst (bound %d)", w.dst.Buffered(), relay.HighWater)
		}
		w.src.Feed(chunk)
		fed += len(chunk)
	}
	if q := w.dst.Buffered(); q <= relay.HighWater || q > relay.HighWater+len(chunk) {
		t.Fatalf("paused with %d queued, want just past %d", q, relay.HighWater)
	}
	w.src.Feed(chunk) // waits in the kernel while src is paused
	if q := w.dst.Buffered(); q != fed {
		t.Fatalf("a paused src was read: %d queued, %d fed before the pause", q, fed)
	}
	w.dst.Drain(-1)
	if w.src.Paused() {
		t.Fatal("src still paused after dst drained")
	}
	if got := len(w.dst.Written()); got != fed+len(chunk) {
		t.Fatalf("dst got %d bytes, want %d", got, fed+len(chunk))
	}
}

func TestEndWithoutARead(t *testing.T) {
	var d relay.Direction
	if d.Ended() {
		t.Fatal("zero Direction ended")
	}
	if !d.End() || !d.Ended() {
		t.Fatal("first End: false, or not Ended after it")
	}
	if d.End() {
		t.Fatal("second End: true, want the end carried once")
	}
}

func TestRemote(t *testing.T) {
	a := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7}
	c := apitest.NewConn(dstSide{&oneWay{}}, apitest.WithT(t), apitest.WithRemoteAddr(a))
	if got := relay.Remote(c); got != "192.0.2.1:7" {
		t.Errorf("Remote = %q", got)
	}
}
