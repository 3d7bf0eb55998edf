// Package proxyproto frames, parses and writes PROXY protocol v1 and v2
// headers (https://www.haproxy.org/download/3.1/doc/proxy-protocol.txt) for
// the loop's listeners.
//
// The loop feeds bytes as they arrive and must not block, so Frame first
// tells from a prefix whether a whole header is there, more is needed, or
// there is none; only a framed header is handed to
// github.com/pires/go-proxyproto, whose Read cannot tell "incomplete" from
// "absent".
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"

	pp "github.com/pires/go-proxyproto"
)

// Size bounds. A v1 header is one line of at most 107 bytes with its CRLF;
// a v2 header is 16 bytes and a length, which netd caps at MaxV2Length so
// that a connection waiting for its header holds at most MaxHeader bytes.
const (
	MaxV1Header = 107
	MaxV2Length = 4096
	MaxHeader   = 16 + MaxV2Length
)

var (
	// ErrNoHeader: the bytes do not begin with a PROXY protocol signature.
	ErrNoHeader = errors.New("netd: no PROXY protocol header")
	// ErrBadHeader: a signature is there but the header is malformed.
	ErrBadHeader = errors.New("netd: bad PROXY protocol header")

	// The framing errors are made once: Frame runs on every read of a
	// connection that waits for its header, and must not allocate.
	errV1Long      = fmt.Errorf("%w: v1 line longer than %d bytes", ErrBadHeader, MaxV1Header)
	errV1Char      = fmt.Errorf("%w: v1 line with a byte that is not printable ASCII", ErrBadHeader)
	errV1CRLF      = fmt.Errorf("%w: v1 line not ended by CRLF", ErrBadHeader)
	errV2Version   = fmt.Errorf("%w: v2 version is not 2", ErrBadHeader)
	errV2Command   = fmt.Errorf("%w: v2 command is neither LOCAL nor PROXY", ErrBadHeader)
	errV2Long      = fmt.Errorf("%w: v2 length over %d", ErrBadHeader, MaxV2Length)
	errTruncated   = fmt.Errorf("%w: datagram ends inside the header", ErrBadHeader)
	errCRC         = fmt.Errorf("%w: v2 CRC32C does not match", ErrBadHeader)
	castagnoli     = crc32.MakeTable(crc32.Castagnoli)
	v1Sig          = []byte("PROXY ")
	v2Sig          = pp.SIGV2
	zeroCRC        = make([]byte, 4)
	errNotFramed   = errors.New("not exactly one framed header")
	errV1WithTLVs  = errors.New("v1 has no TLVs")
	errV1Datagram  = errors.New("v1 carries TCP only")
	errNoAddresses = errors.New("PROXY needs a source and a destination address of one family")
)

// Frame tells whether b begins with a whole PROXY protocol header, without
// consuming anything: n > 0 is the header's length; n == 0 with a nil error
// means more bytes are needed; ErrNoHeader means b does not begin with a
// header (the bytes are the client's own); any other error wraps ErrBadHeader.
// It looks at no more than MaxHeader bytes and allocates nothing.
func Frame(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	switch b[0] {
	case v1Sig[0]:
		return frameV1(b)
	case v2Sig[0]:
		return frameV2(b)
	}
	return 0, ErrNoHeader
}

func frameV1(b []byte) (int, error) {
	if k := min(len(b), len(v1Sig)); !bytes.Equal(b[:k], v1Sig[:k]) {
		return 0, ErrNoHeader
	}
	for i := len(v1Sig); i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r':
			if i+1 == len(b) {
				return 0, nil
			}
			if b[i+1] != '\n' {
				return 0, errV1CRLF
			}
			return i + 2, nil
		case c == '\n':
			return 0, errV1CRLF
		case c < 0x20 || c > 0x7e:
			return 0, errV1Char
		case i >= MaxV1Header-2:
			return 0, errV1Long // no room left for CRLF
		}
	}
	return 0, nil
}

func frameV2(b []byte) (int, error) {
	if k := min(len(b), len(v2Sig)); !bytes.Equal(b[:k], v2Sig[:k]) {
		return 0, ErrNoHeader
	}
	if len(b) < 16 {
		return 0, nil
	}
	if b[12]>>4 != 2 {
		return 0, errV2Version
	}
	if c := b[12] & 0x0f; c > 1 {
		return 0, errV2Command
	}
	l := int(binary.BigEndian.Uint16(b[14:16]))
	if l > MaxV2Length {
		return 0, errV2Long
	}
	if len(b) < 16+l {
		return 0, nil
	}
	return 16 + l, nil
}

// Transport is the client's transport, as a header states it.
type Transport uint8

// The transports; Unspec is v1 UNKNOWN or a v2 LOCAL without addresses.
const (
	Unspec Transport = iota
	TCP
	UDP
	UnixStream
	UnixDatagram
)

var transportNames = [...]string{"unspec", "tcp", "udp", "unix", "unixgram"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return fmt.Sprintf("transport(%d)", t)
}

// TLV is one type-length-value of a v2 header.
type TLV struct {
	Type  byte
	Value []byte
}

// The TLV types netd reads by name (the spec's PP2_TYPE_*).
const (
	TypeALPN      byte = 0x01
	TypeAuthority byte = 0x02
	TypeCRC32C    byte = 0x03
	TypeNoop      byte = 0x04
	TypeUniqueID  byte = 0x05
	TypeSSL       byte = 0x20
	TypeNetNS     byte = 0x30
)

// Header is a parsed PROXY protocol header.
type Header struct {
	Version int // 1 or 2
	// Local is true for v2 LOCAL and v1 UNKNOWN: the sender speaks for
	// itself (a health check), so the connection keeps its real peer and
	// Source and Destination are left zero, as the spec asks.
	Local     bool
	Transport Transport
	// Source and Destination are the client's and the address it reached,
	// for TCP and UDP; IPv4-mapped addresses are given as IPv4.
	Source, Destination netip.AddrPort
	// SourceUnix and DestinationUnix are the socket paths for the Unix
	// transports.
	SourceUnix, DestinationUnix string
	// TLVs are v2's TLVs in their order, without NOOPs and without the
	// CRC32C, which Parse has checked.
	TLVs []TLV
}

// Client is the address the connection is to be known by: the header's
// source, or peer (the socket's own peer) for a Local header or one whose
// source is not an IP address.
func (h *Header) Client(peer netip.AddrPort) netip.AddrPort {
	if h.Local || !h.Source.IsValid() {
		return peer
	}
	return h.Source
}

// TLV returns the value of the first TLV of type t.
func (h *Header) TLV(t byte) ([]byte, bool) {
	for _, v := range h.TLVs {
		if v.Type == t {
			return v.Value, true
		}
	}
	return nil, false
}

// ALPN is the protocol the client negotiated with the proxy ("h2", ...).
func (h *Header) ALPN() string { v, _ := h.TLV(TypeALPN); return string(v) }

// Authority is the host name the client asked for (TLS SNI or Host).
func (h *Header) Authority() string { v, _ := h.TLV(TypeAuthority); return string(v) }

// Parse parses b, which must be exactly one header as Frame framed it. An
// error is ErrNoHeader, or wraps ErrBadHeader and says what is wrong.
func Parse(b []byte) (*Header, error) {
	n, err := Frame(b)
	switch {
	case err != nil:
		return nil, err
	case n != len(b):
		return nil, fmt.Errorf("%w: %w (%d bytes framed of %d)", ErrBadHeader, errNotFramed, n, len(b))
	}
	r := bufio.NewReaderSize(bytes.NewReader(b), len(b))
	ph, err := pp.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if r.Buffered() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the header left unread", ErrBadHeader, r.Buffered())
	}
	h := &Header{Version: int(ph.Version), Local: ph.Command.IsLocal()}
	if h.Version == 2 {
		if err := h.readTLVs(b, ph); err != nil {
			return nil, err
		}
	}
	if h.Local {
		return h, nil // the spec: ignore the address block of a LOCAL header
	}
	switch ap := ph.TransportProtocol; {
	case ap.IsUnix():
		h.Transport = UnixStream
		if ap.IsDatagram() {
			h.Transport = UnixDatagram
		}
		if src, dst, ok := ph.UnixAddrs(); ok {
			h.SourceUnix, h.DestinationUnix = src.Name, dst.Name
		}
	case ap.IsStream(), ap.IsDatagram():
		h.Transport = TCP
		if ap.IsDatagram() {
			h.Transport = UDP
		}
		src, dst, ok := ph.IPs()
		sp, dp, _ := ph.Ports()
		if !ok {
			return nil, fmt.Errorf("%w: no addresses in a PROXY header", ErrBadHeader)
		}
		s, ok1 := netip.AddrFromSlice(src)
		d, ok2 := netip.AddrFromSlice(dst)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: bad address", ErrBadHeader)
		}
		h.Source = netip.AddrPortFrom(s.Unmap(), uint16(sp))
		h.Destination = netip.AddrPortFrom(d.Unmap(), uint16(dp))
	}
	return h, nil
}

// readTLVs splits the TLVs and checks a CRC32C TLV when there is one.
func (h *Header) readTLVs(b []byte, ph *pp.Header) error {
	tlvs, err := ph.TLVs()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	for _, t := range tlvs {
		switch typ := byte(t.Type); typ {
		case TypeNoop:
		case TypeCRC32C:
			if len(t.Value) != 4 {
				return fmt.Errorf("%w: CRC32C TLV of %d bytes", ErrBadHeader, len(t.Value))
			}
			if !crcOK(b, binary.BigEndian.Uint32(t.Value)) {
				return errCRC
			}
		default:
			h.TLVs = append(h.TLVs, TLV{Type: typ, Value: t.Value})
		}
	}
	return nil
}

// crcOK checks the CRC32C of a whole v2 header b, computed with the
// checksum's own four bytes as zeros.
func crcOK(b []byte, want uint32) bool {
	off := 16 + addressLength(b[13])
	for off+3 <= len(b) {
		l := int(binary.BigEndian.Uint16(b[off+1 : off+3]))
		if b[off] == TypeCRC32C && l == 4 && off+7 <= len(b) {
			at := off + 3
			sum := crc32.Update(0, castagnoli, b[:at])
			sum = crc32.Update(sum, castagnoli, zeroCRC)
			sum = crc32.Update(sum, castagnoli, b[at+4:])
			return sum == want
		}
		off += 3 + l
	}
	return false
}

// addressLength is the size of a v2 address block for the family byte.
func addressLength(fam byte) int {
	switch fam >> 4 {
	case 1:
		return 12
	case 2:
		return 36
	case 3:
		return 216
	}
	return 0
}

// ParseDatagram parses the header that begins a datagram (each datagram
// carries its own) and returns it with the payload after it. A datagram
// without one gives ErrNoHeader and the whole datagram as payload; one that
// ends inside its header is bad, since no more bytes will come.
func ParseDatagram(d []byte) (*Header, []byte, error) {
	if len(d) == 0 {
		return nil, d, ErrNoHeader
	}
	n, err := Frame(d)
	switch {
	case errors.Is(err, ErrNoHeader):
		return nil, d, err
	case err != nil:
		return nil, nil, err
	case n == 0:
		return nil, nil, errTruncated
	}
	h, err := Parse(d[:n])
	if err != nil {
		return nil, nil, err
	}
	return h, d[n:], nil
}

// Encode writes h as a header of h.Version (1 or 2), as the proxy module
// sends it to an upstream (send_proxy). A Local header says nothing of the
// client. Mixed IPv4 and IPv6 addresses are sent as IPv6. v1 carries TCP
// only and no TLVs.
func Encode(h *Header) ([]byte, error) {
	b, err := encode(h)
	if err != nil {
		return nil, fmt.Errorf("encode PROXY v%d header: %w", h.Version, err)
	}
	return b, nil
}

func encode(h *Header) ([]byte, error) {
	if h.Version != 1 && h.Version != 2 {
		return nil, fmt.Errorf("version %d: want 1 or 2", h.Version)
	}
	if h.Version == 1 && len(h.TLVs) > 0 {
		return nil, errV1WithTLVs
	}
	ph := &pp.Header{Version: byte(h.Version), Command: pp.LOCAL, TransportProtocol: pp.UNSPEC}
	if !h.Local {
		ph.Command = pp.PROXY
		src, dst := h.Source, h.Destination
		if !src.IsValid() || !dst.IsValid() {
			return nil, errNoAddresses
		}
		if src.Addr().Unmap().Is4() != dst.Addr().Unmap().Is4() {
			src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
			dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
		} else if src.Addr().Is4In6() && dst.Addr().Is4In6() {
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		}
		v4 := src.Addr().Is4()
		switch h.Transport {
		case TCP:
			ph.TransportProtocol = pp.TCPv6
			if v4 {
				ph.TransportProtocol = pp.TCPv4
			}
			ph.SourceAddr, ph.DestinationAddr = net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)
		case UDP:
			if h.Version == 1 {
				return nil, errV1Datagram
			}
			ph.TransportProtocol = pp.UDPv6
			if v4 {
				ph.TransportProtocol = pp.UDPv4
			}
			ph.SourceAddr, ph.DestinationAddr = net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst)
		default:
			return nil, fmt.Errorf("transport %s: want tcp or udp", h.Transport)
		}
	}
	if len(h.TLVs) > 0 {
		tlvs := make([]pp.TLV, len(h.TLVs))
		for i, t := range h.TLVs {
			tlvs[i] = pp.TLV{Type: pp.PP2Type(t.Type), Value: t.Value}
		}
		if err := ph.SetTLVs(tlvs); err != nil {
			return nil, err
		}
	}
	b, err := ph.Format()
	if err != nil {
		return nil, err
	}
	if len(b) > MaxHeader {
		return nil, fmt.Errorf("%d bytes: over netd's %d", len(b), MaxHeader)
	}
	return b, nil
}
