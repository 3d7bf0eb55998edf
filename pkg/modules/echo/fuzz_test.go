package echo_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// tooLongAt is the oracle for the line limit, written line by line rather
// than run by run as echo does it: it returns the offset of the first line
// longer than limit (counting its \n; a last line without one counts as if
// it had it), or -1.
func tooLongAt(in []byte, limit int) int {
	start := 0
	for start < len(in) {
		end := bytes.IndexByte(in[start:], '\n')
		if end < 0 {
			end = len(in) - start // the partial line, \n still to come
		}
		if end+1 > limit {
			return start
		}
		start += end + 1
	}
	return -1
}

// FuzzLineEcho feeds line mode random input, split at random points, with
// a random limit. Under the limit the client reads every complete line
// before the half-close and everything after it; over it, the lines before
// the long one and then a close for line_too_long. Nothing panics.
func FuzzLineEcho(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint64(1), uint16(65534))
	f.Add([]byte("partial"), uint64(2), uint16(6))
	f.Add([]byte("1234567\n12345678\n"), uint64(3), uint16(6))
	f.Add([]byte("\x00\r\n\xff\xfe\n\xc3"), uint64(4), uint16(0))
	f.Add([]byte("\n\n\n"), uint64(5), uint16(0))
	f.Add([]byte(""), uint64(6), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64, limitSeed uint16) {
		limit := echo.MinMaxLineBytes + int(limitSeed)
		e := new(echo.Echo)
		if err := apitest.Provision(t, e, "tcp", fmt.Sprintf("max_line_bytes: %d", limit)); err != nil {
			t.Fatal(err)
		}
		c := apitest.NewConn(e, apitest.WithT(t), apitest.WithSeed(seed))
		c.FeedSplit(in)
		long := tooLongAt(in, limit)
		if long >= 0 {
			if got := c.Written(); !bytes.Equal(got, in[:long]) {
				t.Fatalf("over the limit at %d: client read %q, want %q", long, got, in[:long])
			}
			if c.Reason() != echo.ReasonLineTooLong {
				t.Fatalf("over the limit at %d: reason %q", long, c.Reason())
			}
			return
		}
		complete := bytes.LastIndexByte(in, '\n') + 1
		if got := c.Written(); !bytes.Equal(got, in[:complete]) {
			t.Fatalf("before EOF: client read %q, want %q", got, in[:complete])
		}
		if c.Closing() {
			t.Fatalf("closed before EOF: %q", c.Reason())
		}
		c.FeedEOF()
		if got := c.Written(); !bytes.Equal(got, in) {
			t.Fatalf("after EOF: client read %q, want %q", got, in)
		}
		if !c.Closed() || c.Reason() != api.ReasonClient || c.Aborted() {
			t.Fatalf("after EOF: closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
		}
	})
}
