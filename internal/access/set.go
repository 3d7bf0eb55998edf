// Package access holds the per-listener access control that the loop applies
// at accept, after PROXY protocol: allow and deny lists of CIDRs, a limit on
// live connections per source address, and a per-source rate of new
// connections (or of datagrams on UDP).
//
// Unix sockets have no source address: access control does not apply to them.
package access

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Set is an immutable set of CIDR prefixes. Contains costs one map lookup per
// distinct prefix length of the address's family in the set (at most 33 or
// 129), whatever the number of prefixes, and allocates nothing; a Set may be
// shared by any number of goroutines.
type Set struct {
	bits4, bits6 []int // distinct prefix lengths per family, longest first
	nets         map[pkey]struct{}
	list         []netip.Prefix // the prefixes, masked, in the given order
}

// pkey is a masked prefix as a map key without pointers, which hashes
// faster than netip.Prefix.
type pkey struct {
	hi, lo uint64
	bits   uint8
	v6     bool
}

// mkey is the key of the prefix of length bits around the address whose
// 16-byte form is hi, lo.
func mkey(hi, lo uint64, bits int, v6 bool) pkey {
	l := bits
	if !v6 {
		l += 96 // an IPv4 address sits in the low 32 bits of its 16-byte form
	}
	switch {
	case l == 0:
		hi, lo = 0, 0
	case l <= 64:
		hi &= ^uint64(0) << (64 - l)
		lo = 0
	case l < 128:
		lo &= ^uint64(0) << (128 - l)
	}
	return pkey{hi, lo, uint8(bits), v6}
}

func split(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// ParseSet parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and bare addresses
// (a /32 or /128). An IPv4-mapped IPv6 prefix is stored as its IPv4 form, so
// that it matches the addresses of IPv4 clients. An error names the entry by
// its index and value; an empty or nil list gives an empty Set.
func ParseSet(cidrs []string) (*Set, error) {
	s := &Set{nets: make(map[pkey]struct{}, len(cidrs))}
	for i, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i, c, err)
		}
		s.list = append(s.list, p)
		v6 := p.Addr().Is6()
		hi, lo := split(p.Addr())
		s.nets[mkey(hi, lo, p.Bits(), v6)] = struct{}{}
		bits := &s.bits4
		if v6 {
			bits = &s.bits6
		}
		if !slices.Contains(*bits, p.Bits()) {
			*bits = append(*bits, p.Bits())
		}
	}
	longestFirst := func(a, b int) int { return b - a }
	slices.SortFunc(s.bits4, longestFirst)
	slices.SortFunc(s.bits6, longestFirst)
	return s, nil
}

// MustParseSet is ParseSet for literals in tests and defaults; it panics on a
// bad entry.
func MustParseSet(cidrs ...string) *Set {
	s, err := ParseSet(cidrs)
	if err != nil {
		panic(err)
	}
	return s
}

func parsePrefix(c string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(c, "/") {
		var err error
		if p, err = netip.ParsePrefix(c); err != nil {
			return p, fmt.Errorf("not a CIDR: %w", err)
		}
	} else {
		a, err := netip.ParseAddr(c)
		if err != nil {
			return p, fmt.Errorf("not an address or CIDR: %w", err)
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("an address with a zone cannot be matched")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, fmt.Errorf("an IPv4-mapped prefix needs at least 96 bits")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Len is the number of prefixes in s.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Contains reports whether a lies in one of the prefixes of s. An
// IPv4-mapped IPv6 address is looked up as IPv4; an invalid address or a nil
// Set contains nothing.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	v6 := a.Is6()
	bits := s.bits4
	if v6 {
		bits = s.bits6
	}
	hi, lo := split(a)
	for _, b := range bits {
		if _, ok := s.nets[mkey(hi, lo, b, v6)]; ok {
			return true
		}
	}
	return false
}

// String lists the prefixes as given, comma-separated.
func (s *Set) String() string {
	if s == nil {
		return ""
	}
	out := make([]string, len(s.list))
	for i, p := range s.list {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}
