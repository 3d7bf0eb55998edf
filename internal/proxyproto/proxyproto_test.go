package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v2 builds a v2 header by hand: version/command byte, family byte, the
// address block, then TLVs already encoded.
func v2(verCmd, fam byte, addr []byte, tlvs ...[]byte) []byte {
	body := append([]byte{}, addr...)
	for _, t := range tlvs {
		body = append(body, t...)
	}
	b := append(append([]byte{}, sig...), verCmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func tlv(typ byte, v string) []byte {
	return append([]byte{typ, byte(len(v) >> 8), byte(len(v))}, v...)
}

func ip4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sp), dp)
}

func ip6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sp), dp)
}

func unixAddrs(src, dst string) []byte {
	b := make([]byte, 216)
	copy(b, src)
	copy(b[108:], dst)
	return b
}

// withCRC appends a CRC32C TLV to a v2 header and fills it in (or breaks it).
func withCRC(h []byte, good bool) []byte {
	h = append(h, TypeCRC32C, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(h[14:], binary.BigEndian.Uint16(h[14:])+7)
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	if !good {
		sum++
	}
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// longV1 is the spec's longest v1 header: 107 bytes.
const longV1 = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

// valid are hand-built headers and what they must parse to.
var valid = []struct {
	name string
	in   []byte
	want Header
}{
	{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
		Header{Version: 1, Transport: TCP, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}},
	{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
		Header{Version: 1, Transport: TCP, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}},
	{"v1 tcp6 mapped", []byte("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1000 2000\r\n"),
		Header{Version: 1, Transport: TCP, Source: ap("192.0.2.1:1000"), Destination: ap("192.0.2.2:2000")}},
	{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}},
	{"v1 unknown longest", []byte(longV1), Header{Version: 1, Local: true}},
	{"v2 tcp4", v2(0x21, 0x11, ip4("192.0.2.1", "198.51.100.2", 56324, 443)),
		Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}},
	{"v2 tcp6", v2(0x21, 0x21, ip6("2001:db8::1", "2001:db8::2", 1, 2)),
		Header{Version: 2, Transport: TCP, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:2")}},
	{"v2 udp4", v2(0x21, 0x12, ip4("10.0.0.1", "10.0.0.2", 53, 5353)),
		Header{Version: 2, Transport: UDP, Source: ap("10.0.0.1:53"), Destination: ap("10.0.0.2:5353")}},
	{"v2 udp6", v2(0x21, 0x22, ip6("::1", "::2", 7, 8)),
		Header{Version: 2, Transport: UDP, Source: ap("[::1]:7"), Destination: ap("[::2]:8")}},
	{"v2 unix", v2(0x21, 0x31, unixAddrs("/run/a.sock", "/run/b.sock")),
		Header{Version: 2, Transport: UnixStream, SourceUnix: "/run/a.sock", DestinationUnix: "/run/b.sock"}},
	{"v2 local unspec", v2(0x20, 0x00, nil), Header{Version: 2, Local: true}},
	{"v2 local keeps no addresses", v2(0x20, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2)), Header{Version: 2, Local: true}},
	{"v2 tlvs", v2(0x21, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2),
		tlv(TypeALPN, "h2"), tlv(TypeAuthority, "example.com"), tlv(TypeNoop, "pad"), tlv(0xE0, "app"), tlv(TypeUniqueID, "")),
		Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2"), TLVs: []TLV{
			{TypeALPN, []byte("h2")}, {TypeAuthority, []byte("example.com")}, {0xE0, []byte("app")}, {TypeUniqueID, []byte{}}}}},
	{"v2 local with tlvs", v2(0x20, 0x00, nil, tlv(TypeAuthority, "lb")),
		Header{Version: 2, Local: true, TLVs: []TLV{{TypeAuthority, []byte("lb")}}}},
	{"v2 crc32c", withCRC(v2(0x21, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2), tlv(TypeALPN, "h2")), true),
		Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2"), TLVs: []TLV{{TypeALPN, []byte("h2")}}}},
	{"v2 largest", v2(0x21, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2), tlv(0xE1, strings.Repeat("x", MaxV2Length-12-3))),
		Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2"), TLVs: []TLV{{0xE1, bytes.Repeat([]byte("x"), MaxV2Length-15)}}}},
}

func TestParseValid(t *testing.T) {
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Frame(tt.in)
			if err != nil || n != len(tt.in) {
				t.Fatalf("Frame = %d, %v; want %d, nil", n, err, len(tt.in))
			}
			// Bytes after the header are the client's: Frame stops before them.
			if n, err := Frame(append(append([]byte{}, tt.in...), "GET / HTTP/1.1\r\n"...)); n != len(tt.in) || err != nil {
				t.Fatalf("Frame with payload after = %d, %v", n, err)
			}
			h, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.want.TLVs == nil {
				tt.want.TLVs = h.TLVs // checked below by name when wanted
			}
			if !reflect.DeepEqual(*h, tt.want) {
				t.Fatalf("Parse =\n %+v\nwant\n %+v", *h, tt.want)
			}
			if len(tt.want.TLVs) == 0 && len(h.TLVs) != 0 {
				t.Fatalf("unexpected TLVs %v", h.TLVs)
			}
		})
	}
}

func TestTLVAccessors(t *testing.T) {
	h, err := Parse(v2(0x21, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2), tlv(TypeALPN, "h2"), tlv(TypeAuthority, "example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if h.ALPN() != "h2" || h.Authority() != "example.com" {
		t.Errorf("ALPN %q Authority %q", h.ALPN(), h.Authority())
	}
	if _, ok := h.TLV(TypeUniqueID); ok {
		t.Error("a TLV that is not there was found")
	}
}

// TestTruncatedAtEveryByte: every proper prefix of a valid header asks for
// more, and as a datagram it is bad (no more bytes will come).
func TestTruncatedAtEveryByte(t *testing.T) {
	for _, tt := range valid {
		for k := range len(tt.in) {
			n, err := Frame(tt.in[:k])
			if n != 0 || err != nil {
				t.Fatalf("%s: Frame(first %d of %d bytes) = %d, %v; want 0, nil", tt.name, k, len(tt.in), n, err)
			}
			if k == 0 {
				continue
			}
			if _, _, err := ParseDatagram(tt.in[:k]); !errors.Is(err, ErrBadHeader) {
				t.Fatalf("%s: datagram of the first %d bytes: %v, want a bad header", tt.name, k, err)
			}
		}
	}
}

func TestBadHeaders(t *testing.T) {
	tcp4 := ip4("192.0.2.1", "192.0.2.2", 1, 2)
	over := v2(0x21, 0x11, tcp4)
	binary.BigEndian.PutUint16(over[14:], MaxV2Length+1)
	tests := []struct {
		name    string
		in      []byte
		inFrame bool   // Frame already refuses it (else only Parse)
		want    string // in the error
	}{
		{"v1 LF without CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), true, "CRLF"},
		{"v1 CR without LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), true, "CRLF"},
		{"v1 control byte", []byte("PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n"), true, "printable"},
		{"v1 over 107 bytes", []byte(longV1[:len(longV1)-2] + "5\r\n"), true, "longer than 107"},
		{"v1 over 107 bytes, no end", []byte(strings.Repeat("PROXY ", 30)), true, "longer than 107"},
		{"v1 too few fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), false, "address family"},
		{"v1 unknown protocol", []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), false, "address family"},
		{"v1 port over 65535", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), false, "port"},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), false, "port"},
		{"v1 v6 address in TCP4", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), false, "address"},
		{"v1 double space", []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), false, "address"},
		{"v1 empty", []byte("PROXY \r\n"), false, "bad PROXY"},
		{"v2 version 1", v2(0x11, 0x11, tcp4), true, "version is not 2"},
		{"v2 command 2", v2(0x22, 0x11, tcp4), true, "command"},
		{"v2 over max length", over, true, "length over 4096"},
		{"v2 unknown family", v2(0x21, 0x41, tcp4), false, "address family"},
		{"v2 PROXY without addresses", v2(0x21, 0x00, nil), false, "address family"},
		{"v2 address block short", v2(0x21, 0x11, tcp4[:8]), false, "length"},
		{"v2 truncated TLV", v2(0x21, 0x11, tcp4, []byte{TypeALPN, 0, 10, 'h'}), false, "TLV"},
		{"v2 CRC32C wrong", withCRC(v2(0x21, 0x11, tcp4), false), false, "CRC32C does not match"},
		{"v2 CRC32C of 3 bytes", v2(0x21, 0x11, tcp4, tlv(TypeCRC32C, "abc")), false, "CRC32C TLV of 3 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ferr := Frame(tt.in)
			if tt.inFrame {
				if ferr == nil {
					t.Fatalf("Frame = %d, nil; want an error", n)
				}
			} else if ferr != nil || n != len(tt.in) {
				t.Fatalf("Frame = %d, %v; want %d, nil", n, ferr, len(tt.in))
			}
			_, err := Parse(tt.in)
			if !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %v; want ErrBadHeader mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if _, _, derr := ParseDatagram(tt.in); !errors.Is(derr, ErrBadHeader) {
				t.Errorf("ParseDatagram error %v; want ErrBadHeader", derr)
			}
		})
	}
}

func TestNoHeader(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\n", "hello\n", "PROXX TCP4", "PROXYTCP4", "\r\n\r\n\x00\r\nQUIX\n", "\r\r", "\x16\x03\x01\x00", "P\x00",
	} {
		if n, err := Frame([]byte(in)); n != 0 || err != ErrNoHeader {
			t.Errorf("Frame(%q) = %d, %v; want ErrNoHeader", in, n, err)
		}
		h, payload, err := ParseDatagram([]byte(in))
		if err != ErrNoHeader || h != nil || string(payload) != in {
			t.Errorf("ParseDatagram(%q) = %v, %q, %v; want no header and the whole datagram", in, h, payload, err)
		}
	}
	if n, err := Frame(nil); n != 0 || err != nil {
		t.Errorf("Frame(nil) = %d, %v; want 0, nil: nothing read yet", n, err)
	}
}

func TestParseNotFramed(t *testing.T) {
	in := append([]byte("PROXY UNKNOWN\r\n"), "more"...)
	if _, err := Parse(in); !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), "framed") {
		t.Errorf("Parse of a header with bytes after it: %v", err)
	}
	if _, err := Parse([]byte("PROXY UNK")); !errors.Is(err, ErrBadHeader) {
		t.Errorf("Parse of a partial header: %v", err)
	}
}

func TestParseDatagram(t *testing.T) {
	hdr := v2(0x21, 0x12, ip4("192.0.2.1", "192.0.2.2", 1000, 53))
	h, payload, err := ParseDatagram(append(append([]byte{}, hdr...), "query"...))
	if err != nil || h.Source != ap("192.0.2.1:1000") || string(payload) != "query" {
		t.Fatalf("ParseDatagram = %+v, %q, %v", h, payload, err)
	}
	// A header alone is a datagram with an empty payload.
	if _, payload, err := ParseDatagram(hdr); err != nil || len(payload) != 0 {
		t.Fatalf("header-only datagram: %q, %v", payload, err)
	}
	if _, payload, err := ParseDatagram(nil); err != ErrNoHeader || len(payload) != 0 {
		t.Fatalf("empty datagram: %q, %v", payload, err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Header
		want string // the exact bytes for v1, "" to skip
	}{
		{"v1 tcp4", Header{Version: 1, Transport: TCP, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")},
			"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"},
		{"v1 tcp6", Header{Version: 1, Transport: TCP, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:2")},
			"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"},
		{"v1 local", Header{Version: 1, Local: true}, "PROXY UNKNOWN\r\n"},
		{"v2 tcp4", Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2")},
			string(v2(0x21, 0x11, ip4("192.0.2.1", "192.0.2.2", 1, 2)))},
		{"v2 tcp6 tlvs", Header{Version: 2, Transport: TCP, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:2"),
			TLVs: []TLV{{TypeALPN, []byte("h2")}, {TypeAuthority, []byte("example.com")}}},
			string(v2(0x21, 0x21, ip6("2001:db8::1", "2001:db8::2", 1, 2), tlv(TypeALPN, "h2"), tlv(TypeAuthority, "example.com")))},
		{"v2 udp4", Header{Version: 2, Transport: UDP, Source: ap("10.0.0.1:53"), Destination: ap("10.0.0.2:53")}, ""},
		{"v2 udp6", Header{Version: 2, Transport: UDP, Source: ap("[::1]:53"), Destination: ap("[::2]:53")}, ""},
		{"v2 local", Header{Version: 2, Local: true}, string(v2(0x20, 0x00, nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(&tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && string(b) != tt.want {
				t.Fatalf("Encode = %q, want %q", b, tt.want)
			}
			h, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(Encode) = %v", err)
			}
			if !reflect.DeepEqual(*h, tt.in) {
				t.Fatalf("round trip:\n %+v\nwant\n %+v", *h, tt.in)
			}
		})
	}
	// Mixed families go as IPv6 (the v4 side mapped) and come back as given.
	mixed := Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("[2001:db8::2]:2")}
	b, err := Encode(&mixed)
	if err != nil || b[13] != 0x21 {
		t.Fatalf("mixed families: %q, %v; want a TCP6 header", b, err)
	}
	if h, err := Parse(b); err != nil || h.Source != mixed.Source || h.Destination != mixed.Destination {
		t.Fatalf("mixed families round trip: %+v, %v", h, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		in   Header
		want string
	}{
		{Header{Version: 3, Local: true}, "want 1 or 2"},
		{Header{Version: 1, Local: true, TLVs: []TLV{{TypeALPN, []byte("h2")}}}, "v1 has no TLVs"},
		{Header{Version: 1, Transport: UDP, Source: ap("10.0.0.1:1"), Destination: ap("10.0.0.2:2")}, "v1 carries TCP only"},
		{Header{Version: 2, Transport: TCP, Source: ap("10.0.0.1:1")}, "needs a source and a destination"},
		{Header{Version: 2, Transport: UnixStream, Source: ap("10.0.0.1:1"), Destination: ap("10.0.0.2:2")}, "want tcp or udp"},
		{Header{Version: 2, Local: true, TLVs: []TLV{{0xE0, make([]byte, MaxV2Length)}}}, "over netd's"},
	}
	for _, tt := range tests {
		if _, err := Encode(&tt.in); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "encode PROXY") {
			t.Errorf("Encode(%+v) error %v; want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestClient(t *testing.T) {
	peer := ap("127.0.0.1:40000")
	h := Header{Version: 2, Transport: TCP, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:2")}
	if got := h.Client(peer); got != h.Source {
		t.Errorf("Client = %s, want the header's source", got)
	}
	for _, h := range []Header{{Version: 2, Local: true}, {Version: 2, Transport: UnixStream, SourceUnix: "/a"}} {
		if got := h.Client(peer); got != peer {
			t.Errorf("Client of %+v = %s, want the real peer", h, got)
		}
	}
}

func TestFrameAllocatesNothing(t *testing.T) {
	inputs := [][]byte{[]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), []byte("PROXY TCP4 1.2"), []byte("GET /"),
		[]byte(strings.Repeat("PROXY ", 30)), v2(0x11, 0x11, nil), valid[5].in}
	allocs := testing.AllocsPerRun(100, func() {
		for _, in := range inputs {
			_, _ = Frame(in)
		}
	})
	if allocs != 0 {
		t.Errorf("Frame allocates %v times", allocs)
	}
}

func BenchmarkFrame(b *testing.B) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{{"v1", valid[0].in}, {"v2", valid[12].in}, {"none", []byte("GET / HTTP/1.1\r\n")}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Frame(tt.in)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{{"v1", valid[0].in}, {"v2-tlvs", valid[12].in}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(tt.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
