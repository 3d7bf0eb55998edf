package loop

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// standardReasons are counted in fixed slots; a module's own reasons go to
// a locked map, which only their (rare) closes pay for.
var standardReasons = [...]api.Reason{
	api.ReasonClient, api.ReasonDone, api.ReasonIdleTimeout, api.ReasonOverLimit,
	api.ReasonError, api.ReasonShutdown,
}

// counters are one loop's counts for one listener. Only that loop writes
// them; anyone may read them. The padding keeps two loops' counters off one
// cache line.
type counters struct {
	accepted      atomic.Uint64
	bytesIn       atomic.Uint64
	bytesOut      atomic.Uint64
	readsPaused   atomic.Uint64
	acceptErrors  atomic.Uint64
	datagramsIn   atomic.Uint64
	datagramsOut  atomic.Uint64
	dropped       atomic.Uint64
	closedBy      [len(standardReasons)]atomic.Uint64
	refusedBy     [len(RefusedReasons)]atomic.Uint64
	closedOtherMu sync.Mutex
	closedOther   map[api.Reason]uint64
	_             [64]byte
}

// closed counts a connection closed for r. A refusal (RefusedReasons) is
// counted as refused, not closed: its module never saw it; over_limit is
// counted as both, as it was before refusals were.
func (c *counters) closed(r api.Reason) {
	if i := refusedIndex(r); i >= 0 {
		c.refusedBy[i].Add(1)
		if r != api.ReasonOverLimit {
			return
		}
	}
	for i, s := range standardReasons {
		if s == r {
			c.closedBy[i].Add(1)
			return
		}
	}
	c.closedOtherMu.Lock()
	if c.closedOther == nil {
		c.closedOther = map[api.Reason]uint64{}
	}
	c.closedOther[r]++
	c.closedOtherMu.Unlock()
}

// refused counts a refused datagram (or a connection refused before it
// was accepted as one).
func (c *counters) refused(r api.Reason) {
	if i := refusedIndex(r); i >= 0 {
		c.refusedBy[i].Add(1)
	}
}

// Stats is a snapshot of a listener's counters. Counts are totals since the
// listener started.
type Stats struct {
	Accepted     uint64
	Active       int64
	BytesIn      uint64
	BytesOut     uint64
	ReadsPaused  uint64
	AcceptErrors uint64
	DatagramsIn  uint64
	DatagramsOut uint64
	// Dropped counts datagrams dropped because the socket's queue was full.
	Dropped uint64
	// Closed counts closed connections by reason.
	Closed map[api.Reason]uint64
	// Refused counts connections (datagrams, on udp) refused before the
	// module saw them, by reason (RefusedReasons); every reason is there.
	Refused map[api.Reason]uint64
}

// Stats sums the listener's counters over its loops. Any goroutine.
func (l *Listener) Stats() Stats {
	s := Stats{Active: l.active.Load(), Closed: map[api.Reason]uint64{}, Refused: map[api.Reason]uint64{}}
	for _, r := range RefusedReasons {
		s.Refused[r] = 0
	}
	for i := range l.stats {
		c := &l.stats[i]
		s.Accepted += c.accepted.Load()
		s.BytesIn += c.bytesIn.Load()
		s.BytesOut += c.bytesOut.Load()
		s.ReadsPaused += c.readsPaused.Load()
		s.AcceptErrors += c.acceptErrors.Load()
		s.DatagramsIn += c.datagramsIn.Load()
		s.DatagramsOut += c.datagramsOut.Load()
		s.Dropped += c.dropped.Load()
		for j, r := range standardReasons {
			if n := c.closedBy[j].Load(); n > 0 {
				s.Closed[r] += n
			}
		}
		for j, r := range RefusedReasons {
			s.Refused[r] += c.refusedBy[j].Load()
		}
		c.closedOtherMu.Lock()
		for r, n := range c.closedOther {
			s.Closed[r] += n
		}
		c.closedOtherMu.Unlock()
	}
	return s
}

// LoopStats is a snapshot of one event loop's counters.
type LoopStats struct {
	// Events counts readiness events handled.
	Events uint64
	// Wakeups counts returns from epoll_wait.
	Wakeups uint64
	// Busy is the time spent handling events, as opposed to waiting.
	Busy time.Duration
	// Connections counts the accepted connections the loop serves now.
	Connections int64
}

// LoopStats returns each loop's counters. Any goroutine.
func (e *Engine) LoopStats() []LoopStats {
	out := make([]LoopStats, len(e.loops))
	for i, l := range e.loops {
		out[i] = LoopStats{
			Events:      l.handled.Load(),
			Wakeups:     l.wakeups.Load(),
			Busy:        time.Duration(l.busy.Load()),
			Connections: l.served.Load(),
		}
	}
	return out
}
