package timeproto_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	timeproto "github.com/netd/netd/pkg/modules/time"
)

func newTime(tb testing.TB, network string, now time.Time) *timeproto.Time {
	tb.Helper()
	info, ok := api.Lookup("time")
	if !ok {
		tb.Fatal("time is not registered")
	}
	m := info.New().(*timeproto.Time)
	if err := apitest.Provision(tb, m, network, ""); err != nil {
		tb.Fatal(err)
	}
	if !now.IsZero() {
		timeproto.SetNow(m, func() time.Time { return now })
	}
	return m
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("time")
	if !ok {
		t.Fatal("time is not registered")
	}
	if _, ok := info.New().(*timeproto.Time); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestNoOptions(t *testing.T) {
	if err := apitest.Provision(t, new(timeproto.Time), "udp", ""); err != nil {
		t.Errorf("no options: %v", err)
	}
	err := apitest.Provision(t, new(timeproto.Time), "tcp", "bits: 64")
	if err == nil || !strings.Contains(err.Error(), `options.yaml:1:1: unknown option "bits"`) {
		t.Errorf("Provision = %v, want an unknown option error", err)
	}
}

// TestStamp: the 4 bytes, big-endian. The lines marked xinetd are what
// xinetd 2.3.15.3 (Debian 12) sent at that instant (for 2036, under
// faketime): the count wraps in 2036 as xinetd's does.
func TestStamp(t *testing.T) {
	tests := []struct {
		t    time.Time
		want uint32
	}{
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 2208988800},
		{time.Date(1970, 1, 1, 0, 0, 0, 999_999_999, time.UTC), 2208988800}, // whole seconds
		{time.Date(2026, 11, 25, 21, 16, 17, 0, time.UTC), 0xeeb1cea1},      // xinetd
		{time.Date(2026, 11, 25, 21, 20, 38, 0, time.UTC), 0xeeb1cfa6},      // xinetd
		{time.Date(2036, 2, 7, 6, 28, 15, 0, time.UTC), 0xffffffff},         // the last second of era 0
		{time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), 0},                  // wraps
		{time.Date(2036, 2, 7, 6, 30, 4, 0, time.UTC), 0x6c},                // xinetd, faketime
		{time.Date(2036, 2, 7, 12, 0, 4, 0, time.FixedZone("IST", 19800)), 0x6c},
	}
	for _, tt := range tests {
		got := timeproto.Stamp(tt.t)
		if binary.BigEndian.Uint32(got[:]) != tt.want {
			t.Errorf("Stamp(%v) = % x, want %08x", tt.t, got, tt.want)
		}
	}
	if got := timeproto.Stamp(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)); got != [4]byte{0x83, 0xaa, 0x7e, 0x80} {
		t.Errorf("1970: % x, want 83 aa 7e 80: big-endian", got)
	}
}

var fixed = time.Date(2026, 11, 25, 18, 52, 57, 0, time.UTC)

const fixedStamp = "\xee\xb1\xad\x09" // 0xeeb1ad09 = 4004621577

// TestStream: 4 bytes, then a graceful close.
func TestStream(t *testing.T) {
	if binary.BigEndian.Uint32([]byte(fixedStamp)) != uint32(fixed.Unix()+timeproto.Offset) {
		t.Fatal("fixedStamp is wrong")
	}
	for _, room := range []int{-1, 0, 1, 3} {
		c := apitest.NewConn(newTime(t, "tcp", fixed), apitest.WithT(t), apitest.WithWritable(room))
		for i := 0; !c.Closed() && i < 10; i++ {
			c.Drain(1)
		}
		if got := c.WrittenString(); got != fixedStamp {
			t.Errorf("room %d: client read % x", room, got)
		}
		if !c.Closed() || c.Reason() != api.ReasonDone || c.Aborted() {
			t.Errorf("room %d: closed %v, reason %q, aborted %v", room, c.Closed(), c.Reason(), c.Aborted())
		}
	}
}

// TestRealClock: without a test clock the stamp is now.
func TestRealClock(t *testing.T) {
	before := time.Now().Unix()
	c := apitest.NewConn(newTime(t, "tcp", time.Time{}), apitest.WithT(t))
	after := time.Now().Unix()
	got := c.Written()
	if len(got) != 4 {
		t.Fatalf("client read % x", got)
	}
	s := int64(binary.BigEndian.Uint32(got))
	if s < (before+timeproto.Offset)&0xffffffff || s > (after+timeproto.Offset)&0xffffffff {
		t.Errorf("stamp %d, want between %d and %d", s, before+timeproto.Offset, after+timeproto.Offset)
	}
}

// TestPacket: every datagram gets the 4 bytes, to its sender; none from a
// port below 1024.
func TestPacket(t *testing.T) {
	m := newTime(t, "udp", fixed)
	w := apitest.NewPacketWriter()
	for _, tt := range []struct {
		from   string
		answer bool
	}{
		{"127.0.0.1:40000", true},
		{"[::1]:1024", true},
		{"127.0.0.1:1023", false},
		{"127.0.0.1:37", false},
		{"127.0.0.1:0", false},
	} {
		from := netip.MustParseAddrPort(tt.from)
		for _, payload := range []string{"", "x", strings.Repeat("y", 2000)} {
			w.Deliver(m, []byte(payload), from)
			got := w.TakePackets()
			switch {
			case !tt.answer && len(got) != 0:
				t.Errorf("from %v: answered %+v", from, got)
			case tt.answer && (len(got) != 1 || string(got[0].Data) != fixedStamp || got[0].Addr != from):
				t.Errorf("from %v, %d bytes: %+v", from, len(payload), got)
			}
		}
	}
}
