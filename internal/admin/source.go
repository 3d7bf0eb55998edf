package admin

import (
	"time"

	"github.com/netd/netd/pkg/loop"
)

// Source is what the admin endpoint reads at each scrape and each /readyz.
// The daemon implements it. Every method may be called from any goroutine,
// concurrently, and must not block on the event loops.
type Source interface {
	// Listeners returns one snapshot per listener. Counters are totals
	// since the listener started: the daemon keeps them across reloads
	// that keep the listener's name and module. Snapshots with the same
	// Name are summed, so the daemon may return a replaced listener's
	// final totals next to its successor's live ones. The collector
	// exports exactly the listeners returned, so a listener that a reload
	// removed (or gave another module) must be left out: its series then
	// leave /metrics instead of staying at their last values.
	Listeners() []ListenerSnapshot
	// Ready reports whether every listener listens.
	Ready() bool
	// Draining reports whether shutdown has begun.
	Draining() bool
	// Loops returns one snapshot per event loop.
	Loops() []LoopSnapshot
}

// ListenerSnapshot is one listener's counters at one moment.
type ListenerSnapshot struct {
	Name         string
	Accepted     uint64
	Active       int64
	Closed       map[string]uint64 // by reason: client, done, idle_timeout, over_limit, line_too_long, error, shutdown, or a module's own
	BytesIn      uint64
	BytesOut     uint64
	ReadsPaused  uint64
	AcceptErrors uint64
	DatagramsIn  uint64
	DatagramsOut uint64
	Dropped      uint64 // datagrams dropped: the socket's queue was full, or the amplification guard
	// Refused counts connections (datagrams, on udp) refused before the
	// module saw them, by reason: denied, per_source, rate, over_limit,
	// proxy_protocol.
	Refused map[string]uint64
}

// LoopSnapshot is one event loop's counters at one moment.
type LoopSnapshot struct {
	// ID is the loop's index, 0 to loops-1: the loop label.
	ID int
	// Events counts the readiness events the loop has handled.
	Events uint64
	// Busy is the time the loop has spent handling events and tasks, that
	// is, outside epoll_wait.
	Busy time.Duration
	// Connections is how many accepted connections the loop serves now.
	Connections int64
}

// FromStats turns a listener's loop counters into a snapshot.
func FromStats(name string, s loop.Stats) ListenerSnapshot {
	out := ListenerSnapshot{
		Name:         name,
		Accepted:     s.Accepted,
		Active:       s.Active,
		Closed:       make(map[string]uint64, len(s.Closed)),
		Refused:      make(map[string]uint64, len(s.Refused)),
		BytesIn:      s.BytesIn,
		BytesOut:     s.BytesOut,
		ReadsPaused:  s.ReadsPaused,
		AcceptErrors: s.AcceptErrors,
		DatagramsIn:  s.DatagramsIn,
		DatagramsOut: s.DatagramsOut,
		Dropped:      s.Dropped,
	}
	for r, n := range s.Closed {
		out.Closed[string(r)] += n
	}
	for r, n := range s.Refused {
		out.Refused[string(r)] += n
	}
	return out
}

// Add returns the sum of s and o, with s's name. The daemon can use it to
// fold a stopped listener's final counts into the totals it keeps by name.
func (s ListenerSnapshot) Add(o ListenerSnapshot) ListenerSnapshot {
	sum := s
	sum.Accepted += o.Accepted
	sum.Active += o.Active
	sum.BytesIn += o.BytesIn
	sum.BytesOut += o.BytesOut
	sum.ReadsPaused += o.ReadsPaused
	sum.AcceptErrors += o.AcceptErrors
	sum.DatagramsIn += o.DatagramsIn
	sum.DatagramsOut += o.DatagramsOut
	sum.Dropped += o.Dropped
	sum.Closed = make(map[string]uint64, len(s.Closed)+len(o.Closed))
	for r, n := range s.Closed {
		sum.Closed[r] += n
	}
	for r, n := range o.Closed {
		sum.Closed[r] += n
	}
	sum.Refused = make(map[string]uint64, len(s.Refused))
	for _, m := range []map[string]uint64{s.Refused, o.Refused} {
		for r, n := range m {
			sum.Refused[r] += n
		}
	}
	return sum
}
