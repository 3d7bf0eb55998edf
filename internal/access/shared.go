package access

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
)

// Counter is what a Guard asks about per-source limits: a *Table for one
// loop, a *Shared for several.
type Counter interface {
	Acquire(a netip.Addr, now int64) Reason
	Release(a netip.Addr)
}

var (
	_ Counter = (*Table)(nil)
	_ Counter = (*Shared)(nil)
)

// Shared is a Table split into shards, each behind its own mutex, so that the
// loops of one listener (SO_REUSEPORT puts one source's connections on any of
// them) count each source once. A source always lands in the same shard, so
// its count is exact; loops contend only when they touch the same shard at
// the same instant. Safe for any number of goroutines.
type Shared struct {
	shift  uint
	seed   [2]uint64
	shards []shard
}

type shard struct {
	mu sync.Mutex
	t  *Table
	_  [64]byte // keeps two shards' mutexes off one cache line
}

// NewShared makes a Shared for l with shards shards (rounded up to a power
// of two; 0 means 16), sharing l.Sources between them.
func NewShared(l Limits, shards int) (*Shared, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if !l.Active() {
		return nil, errors.New("no per-source limit is set")
	}
	if shards <= 0 {
		shards = 16
	}
	b := bits.Len(uint(shards - 1))
	n := 1 << b
	sources := l.Sources
	if sources == 0 {
		sources = DefaultSources
	}
	s := &Shared{
		shift:  uint(64 - b),
		seed:   [2]uint64{rand.Uint64(), rand.Uint64()},
		shards: make([]shard, n),
	}
	for i := range s.shards {
		// The shard is picked by the hash's top bits and the slot by its low
		// ones, so the two choices stay independent.
		s.shards[i].t = newTable(l, s.seed, max(1, (sources+n-1)/n))
	}
	return s, nil
}

func (s *Shared) shard(h uint64) *shard {
	if s.shift == 64 {
		return &s.shards[0]
	}
	return &s.shards[h>>s.shift]
}

// Acquire is Table.Acquire for several goroutines.
func (s *Shared) Acquire(a netip.Addr, now int64) Reason {
	if !a.IsValid() {
		return OK
	}
	k := key(a)
	h := hash(k, s.seed)
	sh := s.shard(h)
	sh.mu.Lock()
	r := sh.t.acquire(k, h, now)
	sh.mu.Unlock()
	return r
}

// Release is Table.Release for several goroutines.
func (s *Shared) Release(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	k := key(a)
	h := hash(k, s.seed)
	sh := s.shard(h)
	sh.mu.Lock()
	sh.t.release(k, h)
	sh.mu.Unlock()
}

// Len is how many sources are tracked now, over all shards.
func (s *Shared) Len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += s.shards[i].t.Len()
		s.shards[i].mu.Unlock()
	}
	return n
}
