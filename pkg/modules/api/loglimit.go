package api

import (
	"sync/atomic"
	"time"
)

// LogLimit lets a log line through at most once a second, so that a flood
// (a client per millisecond over a connection limit, an upstream down for
// every client) cannot flood the log. The zero value is ready; it is safe
// from any goroutine, so one LogLimit may serve every loop.
type LogLimit struct {
	last atomic.Int64 // Unix nanoseconds of the last line let through; 0: none yet
}

// Allow reports whether a line may be logged at now, and if so counts it
// as logged.
func (l *LogLimit) Allow(now time.Time) bool {
	n := now.UnixNano()
	prev := l.last.Load()
	if prev != 0 && n-prev < int64(time.Second) {
		return false
	}
	return l.last.CompareAndSwap(prev, n)
}
