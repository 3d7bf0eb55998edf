// Package relay is the byte pump shared by the modules that join two loop
// connections, proxy (client and upstream) and exec (client and child):
// what one side reads is written to the other, with backpressure and the
// end of input carried across. It runs on the loop that owns both
// connections and holds no state beyond two flags per direction.
package relay

import "github.com/netd/netd/pkg/modules/api"

// HighWater bounds what one side holds for the other: once the receiving
// side has more than HighWater bytes it could not send yet, the sending
// side is no longer read until the receiving side has drained
// (OnWritable). Reads are at most 64 KiB, so a direction holds at most
// HighWater plus one read.
const HighWater = 256 << 10

// Direction is one direction of a relay, from one connection to the
// other. The zero value is ready: not paused, not ended.
type Direction struct {
	paused bool // from is not read: to holds more than HighWater
	ended  bool // from's end of input has been carried across
}

// Forward writes what from holds to to, and pauses reading from while to
// holds more than HighWater. A write to a closing side fails: the bytes
// are dropped, as nobody is left to read them. Forward reports true once,
// the first time it finds from's input closed: the caller then carries the
// end of input across (a half-close, or a close once both ended).
func (d *Direction) Forward(from, to api.Conn) (ended bool) {
	if in := from.Inbound(); len(in) > 0 {
		_, _ = to.Write(in)
		from.Consume(len(in))
		if to.Buffered() > HighWater {
			from.PauseReading()
			d.paused = true
		}
	}
	if from.InputClosed() && !d.ended {
		d.ended = true
		return true
	}
	return false
}

// Resume reads from again if Forward paused it. Call it when to has
// drained (to's OnWritable), and only while from is open.
func (d *Direction) Resume(from api.Conn) {
	if d.paused {
		d.paused = false
		from.ResumeReading()
	}
}

// End marks the direction ended without a read, for a source that went
// away, and reports whether it was not ended before: the caller then
// carries the end of input across, once.
func (d *Direction) End() bool {
	if d.ended {
		return false
	}
	d.ended = true
	return true
}

// Ended reports whether from's end of input has been carried across.
func (d *Direction) Ended() bool { return d.ended }

// Remote names c's peer for a log line.
func Remote(c api.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}
