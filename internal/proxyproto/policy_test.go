package proxyproto

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/access"
)

var trusted = access.MustParseSet("10.0.0.0/8", "::1")

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"require": Require, "optional": Optional} {
		if m, err := ParseMode(s); err != nil || m != want || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Require", "on", "v2"} {
		if _, err := ParseMode(s); err == nil || !strings.Contains(err.Error(), "want require or optional") {
			t.Errorf("ParseMode(%q) error %v", s, err)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{Mode: Require, Trusted: trusted}, ""},
		{Policy{Mode: Optional, Trusted: trusted, Timeout: time.Second}, ""},
		{Policy{Trusted: trusted}, "mode"},
		{Policy{Mode: Require}, "trusted"},
		{Policy{Mode: Require, Trusted: access.MustParseSet()}, "trusted"},
		{Policy{Mode: Require, Trusted: trusted, Timeout: -1}, "timeout"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.p, err, tt.want)
		}
	}
	if d := (&Policy{}).HeaderTimeout(); d != DefaultTimeout {
		t.Errorf("default timeout %s", d)
	}
}

func TestPolicyAccept(t *testing.T) {
	tests := []struct {
		mode Mode
		peer string
		want Action
	}{
		{Require, "10.1.2.3", Wait},
		{Require, "::1", Wait},
		{Require, "::ffff:10.1.2.3", Wait},
		{Require, "192.0.2.1", Close},
		{Optional, "10.1.2.3", Wait},
		{Optional, "192.0.2.1", Pass},
	}
	for _, tt := range tests {
		p := Policy{Mode: tt.mode, Trusted: trusted}
		if got := p.Accept(netip.MustParseAddr(tt.peer)); got != tt.want {
			t.Errorf("%s from %s: %s, want %s", tt.mode, tt.peer, got, tt.want)
		}
	}
}

func TestPolicyNext(t *testing.T) {
	hdr := "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
	tests := []struct {
		name     string
		mode     Mode
		buf      string
		timedOut bool
		want     Action
		n        int
		err      error // errors.Is target, nil for none
	}{
		{"header", Require, hdr, false, Use, len(hdr), nil},
		{"header and data", Optional, hdr + "hello\n", false, Use, len(hdr), nil},
		{"header late but whole", Require, hdr, true, Use, len(hdr), nil},
		{"partial", Require, hdr[:20], false, Wait, 0, nil},
		{"nothing yet", Optional, "", false, Wait, 0, nil},
		{"partial at timeout", Optional, hdr[:20], true, Close, 0, ErrTimeout},
		{"nothing at timeout, optional", Optional, "", true, Pass, 0, nil},
		{"nothing at timeout, require", Require, "", true, Close, 0, ErrTimeout},
		{"no header, optional", Optional, "hello\n", false, Pass, 0, nil},
		{"no header, require", Require, "hello\n", false, Close, 0, ErrNoHeader},
		{"bad header, optional", Optional, "PROXY TCP4 1.2.3.4\n", false, Close, 0, ErrBadHeader},
		{"bad header, require", Require, "PROXY TCP4 1.2.3.4\n", false, Close, 0, ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Mode: tt.mode, Trusted: trusted}
			a, n, err := p.Next([]byte(tt.buf), tt.timedOut)
			if a != tt.want || n != tt.n || (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("Next = %s, %d, %v; want %s, %d, %v", a, n, err, tt.want, tt.n, tt.err)
			}
		})
	}
}

func TestPolicyDatagram(t *testing.T) {
	hdr := string(v2(0x21, 0x12, ip4("192.0.2.1", "192.0.2.2", 1000, 53)))
	tests := []struct {
		name     string
		mode     Mode
		peer     string
		d        string
		want     Action
		payload  string
		isHeader bool
	}{
		{"trusted with header", Require, "10.0.0.1", hdr + "q", Use, "q", true},
		{"trusted with header, optional", Optional, "10.0.0.1", hdr + "q", Use, "q", true},
		{"trusted without header, optional", Optional, "10.0.0.1", "q", Pass, "q", false},
		{"trusted without header, require", Require, "10.0.0.1", "q", Close, "", false},
		{"trusted, truncated header", Optional, "10.0.0.1", hdr[:20], Close, "", false},
		{"untrusted, require", Require, "192.0.2.9", hdr + "q", Close, "", false},
		{"untrusted forging a header, optional", Optional, "192.0.2.9", hdr + "q", Pass, hdr + "q", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Mode: tt.mode, Trusted: trusted}
			a, h, payload, err := p.Datagram(netip.MustParseAddr(tt.peer), []byte(tt.d))
			if a != tt.want || string(payload) != tt.payload || (h != nil) != tt.isHeader || (a == Close) != (err != nil) {
				t.Errorf("Datagram = %s, %+v, %q, %v; want %s, %q", a, h, payload, err, tt.want, tt.payload)
			}
			if h != nil && h.Source != ap("192.0.2.1:1000") {
				t.Errorf("source %s", h.Source)
			}
		})
	}
}
