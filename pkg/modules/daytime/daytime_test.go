package daytime_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/daytime"
)

// xmas is the fixed clock of these tests, in UTC.
var xmas = time.Date(2026, 12, 25, 7, 5, 9, 999_000_000, time.UTC)

func newDaytime(tb testing.TB, network string, now time.Time) *daytime.Daytime {
	tb.Helper()
	info, ok := api.Lookup("daytime")
	if !ok {
		tb.Fatal("daytime is not registered")
	}
	d := info.New().(*daytime.Daytime)
	if err := apitest.Provision(tb, d, network, ""); err != nil {
		tb.Fatal(err)
	}
	if !now.IsZero() {
		daytime.SetNow(d, func() time.Time { return now })
	}
	return d
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("daytime")
	if !ok {
		t.Fatal("daytime is not registered")
	}
	if _, ok := info.New().(*daytime.Daytime); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestNoOptions(t *testing.T) {
	if err := apitest.Provision(t, new(daytime.Daytime), "udp", ""); err != nil {
		t.Errorf("no options: %v", err)
	}
	err := apitest.Provision(t, new(daytime.Daytime), "tcp", "format: rfc3339")
	if err == nil || !strings.Contains(err.Error(), `options.yaml:1:1: unknown option "format"`) {
		t.Errorf("Provision = %v, want an unknown option error", err)
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestAppendLine: the format, byte for byte. The lines marked xinetd are
// what xinetd 2.3.15.3 (Debian 12) sent, run with TZ set to the zone (and,
// for 2036, under faketime), at the instant given.
func TestAppendLine(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		// The example of the module's README.md.
		{time.Date(2026, 11, 25, 18, 52, 57, 0, time.UTC), "25 NOV 2026 18:52:57 UTC\r\n"},
		// xinetd, TZ=Asia/Kolkata, faketime 2036-02-07 12:00:02: the day keeps its leading zero.
		{time.Date(2036, 2, 7, 6, 30, 2, 0, time.UTC).In(zone(t, "Asia/Kolkata")), "07 FEB 2036 12:00:02 IST\r\n"},
		// xinetd, TZ=America/New_York.
		{time.Date(2026, 11, 25, 21, 21, 5, 0, time.UTC).In(zone(t, "America/New_York")), "25 NOV 2026 16:21:05 EST\r\n"},
		// xinetd, TZ=America/Sao_Paulo: a zone whose abbreviation is numeric.
		{time.Date(2026, 11, 25, 21, 20, 53, 0, time.UTC).In(zone(t, "America/Sao_Paulo")), "25 NOV 2026 18:20:53 -03\r\n"},
		// xinetd, TZ=Australia/Lord_Howe: half-hour daylight saving.
		{time.Date(2026, 11, 25, 21, 20, 58, 0, time.UTC).In(zone(t, "Australia/Lord_Howe")), "26 NOV 2026 08:20:58 +11\r\n"},
		// Summer time in the zone's own abbreviation.
		{time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC).In(zone(t, "America/New_York")), "04 JUL 2026 08:00:00 EDT\r\n"},
		// Midnight, single digits everywhere, fractions of a second dropped.
		{time.Date(2027, 1, 1, 0, 0, 0, 999_999_999, time.UTC), "01 JAN 2027 00:00:00 UTC\r\n"},
		{time.Date(2000, 2, 29, 9, 8, 7, 0, time.FixedZone("XYZ", 3600)), "29 FEB 2000 09:08:07 XYZ\r\n"},
		{time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), "31 DEC 1999 23:59:59 UTC\r\n"},
	}
	for _, tt := range tests {
		if got := string(daytime.AppendLine(nil, tt.t)); got != tt.want {
			t.Errorf("AppendLine(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
	months := []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	for i, m := range months {
		got := string(daytime.AppendLine([]byte("x"), time.Date(2026, time.Month(i+1), 15, 12, 0, 0, 0, time.UTC)))
		if want := "x15 " + m + " 2026 12:00:00 UTC\r\n"; got != want {
			t.Errorf("month %d: %q, want %q", i+1, got, want)
		}
	}
}

// TestStream: the line, then a graceful close; nothing is aborted.
func TestStream(t *testing.T) {
	c := apitest.NewConn(newDaytime(t, "tcp", xmas), apitest.WithT(t))
	if got := c.WrittenString(); got != "25 DEC 2026 07:05:09 UTC\r\n" {
		t.Errorf("client read %q", got)
	}
	if !c.Closed() || c.Reason() != api.ReasonDone || c.Aborted() {
		t.Errorf("closed %v, reason %q, aborted %v", c.Closed(), c.Reason(), c.Aborted())
	}
}

// TestStreamSlowClient: a line the kernel cannot take at once still goes
// out whole before the close.
func TestStreamSlowClient(t *testing.T) {
	c := apitest.NewConn(newDaytime(t, "unix", xmas.In(zone(t, "Europe/Paris"))), apitest.WithT(t), apitest.WithWritable(5))
	if c.Closed() || !c.Closing() || c.Buffered() == 0 {
		t.Fatalf("closed %v, closing %v, buffered %d: want the rest queued", c.Closed(), c.Closing(), c.Buffered())
	}
	for !c.Closed() {
		if c.Drain(3) == 0 {
			t.Fatal("Drain moved nothing")
		}
	}
	if got := c.WrittenString(); got != "25 DEC 2026 08:05:09 CET\r\n" || c.Aborted() {
		t.Errorf("client read %q, aborted %v", got, c.Aborted())
	}
}

// TestRealClock: without a test clock the line is the time now, local.
func TestRealClock(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	c := apitest.NewConn(newDaytime(t, "tcp", time.Time{}), apitest.WithT(t))
	after := time.Now()
	got := c.WrittenString()
	if !regexp.MustCompile(`^\d\d [A-Z]{3} \d{4} \d\d:\d\d:\d\d \S+\r\n$`).MatchString(got) {
		t.Fatalf("line %q", got)
	}
	for s := before; !s.After(after); s = s.Add(time.Second) {
		if string(daytime.AppendLine(nil, s)) == got {
			return
		}
	}
	t.Errorf("line %q is not local time between %v and %v", got, before, after)
}

// TestPacket: every datagram gets the line, to its sender, whatever it
// holds; none from a port below 1024.
func TestPacket(t *testing.T) {
	d := newDaytime(t, "udp", xmas)
	w := apitest.NewPacketWriter()
	want := "25 DEC 2026 07:05:09 UTC\r\n"
	for _, tt := range []struct {
		from   string
		answer bool
	}{
		{"127.0.0.1:40000", true},
		{"[::1]:1024", true},
		{"192.0.2.9:65535", true},
		{"127.0.0.1:1023", false},
		{"127.0.0.1:13", false},
		{"127.0.0.1:0", false},
	} {
		from := netip.MustParseAddrPort(tt.from)
		for _, payload := range []string{"", "what time is it?", strings.Repeat("x", 9000)} {
			w.Deliver(d, []byte(payload), from)
			got := w.TakePackets()
			switch {
			case !tt.answer && len(got) != 0:
				t.Errorf("from %v: answered %+v", from, got)
			case tt.answer && (len(got) != 1 || string(got[0].Data) != want || got[0].Addr != from):
				t.Errorf("from %v, %d bytes: %+v", from, len(payload), got)
			}
		}
	}
}

func TestPacketQueueFull(t *testing.T) {
	d := newDaytime(t, "udp", xmas)
	w := apitest.NewPacketWriter()
	w.SetQueueFull(true)
	w.Deliver(d, nil, netip.MustParseAddrPort("127.0.0.1:40000"))
	if w.Dropped() != 1 {
		t.Errorf("Dropped = %d", w.Dropped())
	}
}
