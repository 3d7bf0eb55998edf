package access

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// Reason says why a connection or datagram was refused; OK ("") lets it in.
// The strings are the reason label of netd_connections_refused_total.
type Reason string

// The reasons this package gives.
const (
	OK        Reason = ""
	Denied    Reason = "denied"     // in deny, or not in a non-empty allow
	PerSource Reason = "per_source" // the source has max_per_source live connections
	Rate      Reason = "rate"       // the source's token bucket is empty
)

// DefaultSources is how many source addresses a Table tracks at most when
// Limits.Sources is 0: 16384 sources cost about 1 MiB.
const DefaultSources = 1 << 14

// maxBurst bounds Burst so that the bucket arithmetic cannot overflow.
const maxBurst = 1 << 20

// evictScan bounds the tracked sources one eviction looks at, so that
// admitting a new source stays O(1) even when the table is full.
const evictScan = 64

// Limits are the per-source limits of a listener.
type Limits struct {
	// MaxPerSource is the most live connections one source address may
	// have; 0 means no limit.
	MaxPerSource int
	// Rate is how many new connections (datagrams, on UDP) one source may
	// open per second, on average; 0 means no limit.
	Rate float64
	// Burst is how many may come at once before Rate holds them back; 0
	// means Rate rounded up, at least 1.
	Burst int
	// Sources bounds the source addresses tracked at once, and so the
	// memory; 0 means DefaultSources.
	Sources int
}

// Active reports whether l limits anything, that is whether a Table is
// needed at all.
func (l Limits) Active() bool { return l.MaxPerSource > 0 || l.Rate > 0 }

// Validate checks l; its error names the field at fault.
func (l Limits) Validate() error {
	switch {
	case l.MaxPerSource < 0:
		return fmt.Errorf("max_per_source %d: must not be negative", l.MaxPerSource)
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate < 0:
		return fmt.Errorf("rate %v: must be a positive number of connections per second", l.Rate)
	case l.Rate > 0 && l.Rate < 0.001:
		return fmt.Errorf("rate %v: must be at least 0.001 (one in 1000 seconds)", l.Rate)
	case l.Rate > 1e9:
		return fmt.Errorf("rate %v: must be at most 1e9 per second", l.Rate)
	case l.Burst < 0 || l.Burst > maxBurst:
		return fmt.Errorf("burst %d: must be between 0 and %d", l.Burst, maxBurst)
	case l.Burst > 0 && l.Rate == 0:
		return errors.New("burst: needs a rate")
	case l.Sources < 0 || l.Sources > 1<<24:
		return fmt.Errorf("sources %d: must be between 0 and %d", l.Sources, 1<<24)
	}
	return nil
}

// slot is one tracked source. The token bucket is kept as GCRA's
// theoretical arrival time: the bucket is full when tat <= now, and a
// request is let in when tat - now <= tolerance.
type slot struct {
	key  [16]byte
	tat  int64
	live int32
	used bool
}

// Table counts, per source address, the live connections and the token
// bucket of new ones. It is for one goroutine (one loop); Shared spreads
// Tables behind mutexes for several loops.
//
// Memory is bounded: the slots are allocated once, twice Sources of them
// (open addressing, linear probing, at most half full). When Sources sources
// are tracked, a new one evicts, among the next evictScan slots of a clock
// hand, the source with no live connection whose bucket is the fullest (an
// evicted source only regains a full bucket, the least it can gain). A source
// with live connections is never evicted, because its count is live state; if
// none can be evicted the new source is refused as PerSource, so the table
// should be sized above the listener's connection limit. Addresses are hashed
// with a random seed, so a client cannot choose colliding addresses.
type Table struct {
	max       int32 // MaxPerSource, 0: not counted
	rate      bool
	interval  int64 // ns per token
	tolerance int64 // interval * (burst-1)
	cap       int
	n         int
	hand      uint64
	mask      uint64
	slots     []slot
	seed      [2]uint64
}

// NewTable makes a Table for l, which must be valid and active.
func NewTable(l Limits) (*Table, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if !l.Active() {
		return nil, errors.New("no per-source limit is set")
	}
	return newTable(l, [2]uint64{rand.Uint64(), rand.Uint64()}, l.Sources), nil
}

func newTable(l Limits, seed [2]uint64, sources int) *Table {
	if sources <= 0 {
		sources = DefaultSources
	}
	n := uint64(1) << bits.Len64(uint64(2*sources-1)) // the power of two >= 2*sources
	t := &Table{
		max:   int32(l.MaxPerSource),
		rate:  l.Rate > 0,
		cap:   sources,
		mask:  n - 1,
		slots: make([]slot, n),
		seed:  seed,
	}
	if t.rate {
		burst := l.Burst
		if burst == 0 {
			burst = max(1, int(math.Ceil(l.Rate)))
		}
		t.interval = max(1, int64(1e9/l.Rate))
		t.tolerance = t.interval * int64(burst-1)
	}
	return t
}

// Len is how many sources are tracked now.
func (t *Table) Len() int { return t.n }

// Acquire decides on a new connection (or datagram) from a at time now, in
// nanoseconds on any monotonic clock the caller keeps. On OK it has counted
// the connection: call Release once when it closes; on a refusal nothing is
// counted. An invalid address (no IP source) is let in and not counted.
func (t *Table) Acquire(a netip.Addr, now int64) Reason {
	if !a.IsValid() {
		return OK
	}
	k := key(a)
	return t.acquire(k, hash(k, t.seed), now)
}

// Release uncounts a connection from a that Acquire let in.
func (t *Table) Release(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	k := key(a)
	t.release(k, hash(k, t.seed))
}

func (t *Table) acquire(k [16]byte, h uint64, now int64) Reason {
	i, found := t.find(k, h)
	if found {
		s := &t.slots[i]
		if t.max > 0 && s.live >= t.max {
			return PerSource
		}
		if t.rate {
			tat := max(s.tat, now)
			if tat-now > t.tolerance {
				return Rate
			}
			s.tat = tat + t.interval
		}
		if t.max > 0 {
			s.live++
		}
		return OK
	}
	if t.n >= t.cap {
		if !t.evict(now) {
			return PerSource
		}
		i, _ = t.find(k, h)
	}
	s := &t.slots[i]
	*s = slot{key: k, used: true}
	if t.rate {
		s.tat = now + t.interval
	}
	if t.max > 0 {
		s.live = 1
	}
	t.n++
	return OK
}

func (t *Table) release(k [16]byte, h uint64) {
	if t.max == 0 {
		return
	}
	i, found := t.find(k, h)
	if !found || t.slots[i].live == 0 {
		return
	}
	t.slots[i].live--
	if t.slots[i].live == 0 && !t.rate {
		t.remove(i) // nothing left to remember about this source
	}
}

// find returns the slot holding k, or the empty slot where k would go.
func (t *Table) find(k [16]byte, h uint64) (uint64, bool) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			return i, false
		}
		if s.key == k {
			return i, true
		}
	}
}

// evict frees one slot: of the next evictScan tracked sources after the
// hand, the one with no live connection whose bucket is the fullest. It looks
// at 4*evictScan slots at most (the table is half full when evicting), so a
// table full of live sources refuses a new one in bounded time.
func (t *Table) evict(now int64) bool {
	best, bestTat := uint64(0), int64(math.MaxInt64)
	found := false
	seen := 0
	for range min(len(t.slots), 4*evictScan) {
		i := t.hand & t.mask
		t.hand++
		s := &t.slots[i]
		if !s.used {
			continue
		}
		if s.live == 0 && (!found || s.tat < bestTat) {
			best, bestTat, found = i, s.tat, true
			if s.tat <= now {
				break // a full bucket: forgetting it loses nothing
			}
		}
		if seen++; seen == evictScan {
			break
		}
	}
	if found {
		t.remove(best)
	}
	return found
}

// remove empties slot i and shifts back the run after it, so that linear
// probing finds every key without tombstones.
func (t *Table) remove(i uint64) {
	t.slots[i] = slot{}
	t.n--
	for j := (i + 1) & t.mask; t.slots[j].used; j = (j + 1) & t.mask {
		home := hash(t.slots[j].key, t.seed) & t.mask
		// Move j into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			t.slots[j] = slot{}
			i = j
		}
	}
}

// key is the 16-byte form of a, IPv4 as IPv4-mapped, zone dropped.
func key(a netip.Addr) [16]byte { return a.Unmap().As16() }

// hash mixes the key with a secret seed (wyhash's multiply-fold).
func hash(k [16]byte, seed [2]uint64) uint64 {
	lo := binary.LittleEndian.Uint64(k[:8]) ^ seed[0]
	hi := binary.LittleEndian.Uint64(k[8:]) ^ seed[1]
	m1, m0 := bits.Mul64(lo, hi)
	m1, m0 = bits.Mul64(m1^m0^seed[0], 0x9E3779B97F4A7C15)
	return m1 ^ m0
}
