package proxyproto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, tt := range valid {
		f.Add(tt.in)
		f.Add(append(append([]byte{}, tt.in...), "data"...))
	}
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"))
	f.Add(v2(0x21, 0x11, nil, tlv(TypeCRC32C, "abcd")))
}

// FuzzFrame: Frame never panics, frames within bounds, and is consistent:
// the framed prefix frames alike, and one byte less asks for more.
func FuzzFrame(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Frame(b)
		switch {
		case err != nil:
			if n != 0 || (!errors.Is(err, ErrNoHeader) && !errors.Is(err, ErrBadHeader)) {
				t.Fatalf("Frame = %d, %v", n, err)
			}
		case n == 0:
			if len(b) >= MaxHeader {
				t.Fatalf("asks for more after %d bytes", len(b))
			}
		default:
			if n > len(b) || n > MaxHeader {
				t.Fatalf("framed %d of %d bytes", n, len(b))
			}
			if m, err := Frame(b[:n]); m != n || err != nil {
				t.Fatalf("the framed prefix frames as %d, %v", m, err)
			}
			if m, err := Frame(b[:n-1]); m != 0 || err != nil {
				t.Fatalf("one byte short frames as %d, %v", m, err)
			}
		}
	})
}

// FuzzParse: Parse and ParseDatagram never panic, fail with one of the two
// sentinel errors, and what parses and can be encoded again parses the same.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := ParseDatagram(b)
		if err != nil {
			if !errors.Is(err, ErrNoHeader) && !errors.Is(err, ErrBadHeader) {
				t.Fatalf("ParseDatagram error %v wraps neither sentinel", err)
			}
			return
		}
		if !bytes.HasSuffix(b, payload) {
			t.Fatal("payload is not the datagram's tail")
		}
		if h.Version == 1 && len(h.TLVs) > 0 {
			t.Fatal("v1 with TLVs")
		}
		enc, err := Encode(h)
		if err != nil {
			return // a Unix transport, or TLVs too big to write back
		}
		h2, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse(Encode(%+v)) = %v", h, err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip\n %+v\n %+v", h, h2)
		}
	})
}
