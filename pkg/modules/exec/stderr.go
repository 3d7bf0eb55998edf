package exec

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Where a child's stderr goes: the stderr option's values.
const (
	StderrLog        = "log"        // netd's log, escaped, one line at a time, rate-limited
	StderrConnection = "connection" // the client, merged with stdout
	StderrDiscard    = "discard"    // /dev/null
)

// MaxStderrLine bounds a logged line of a child's stderr, in bytes; the
// rest of a longer line is dropped and the line logged as truncated.
const MaxStderrLine = 512

// stderrReads bounds the reads of one readable event, so that a child
// that writes without pause cannot hold its loop.
const stderrReads = 16

// stderrLog reads a child's stderr from a pipe on the loop and logs it a
// line at a time. Each line is escaped (a newline, a carriage return or a
// terminal escape becomes \n, \r, \x1b), so a child cannot forge a line of
// netd's log or drive the terminal of whoever reads it; lines share the
// listener's rate limit (api.LogLimit), so a child cannot flood the log:
// the number of lines dropped comes with the next line logged. Its
// methods run on the session's loop, or under the session's mu.
type stderrLog struct {
	fd       int // the pipe's read end; -1 once closed
	stop     func()
	line     []byte // a partial line; cap MaxStderrLine
	skipping bool   // dropping the rest of an over-long line
}

// stderrReadable drains what the pipe holds, logging every whole line; at
// end-of-file it logs the last partial line and closes the pipe.
func (s *session) stderrReadable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.stderr
	if l == nil || l.fd < 0 {
		return
	}
	for i := 0; i < stderrReads; i++ {
		n, err := unix.Read(l.fd, l.line[len(l.line):cap(l.line)])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 {
			if len(l.line) > 0 && !l.skipping {
				s.logStderr(l.line, false)
			}
			s.closeStderrLocked(true)
			return
		}
		l.line = l.line[:len(l.line)+n]
		for {
			nl := bytes.IndexByte(l.line, '\n')
			if nl < 0 {
				if len(l.line) == cap(l.line) {
					if !l.skipping {
						s.logStderr(l.line, true)
					}
					l.skipping = true
					l.line = l.line[:0]
				}
				break
			}
			if !l.skipping {
				s.logStderr(l.line[:nl], false)
			}
			l.skipping = false
			l.line = l.line[:copy(l.line, l.line[nl+1:])]
		}
	}
}

// logStderr logs one line of the child's stderr, if the rate limit lets
// it through.
func (s *session) logStderr(line []byte, truncated bool) {
	e := s.e
	if !e.stderrLimit.Allow(s.client.Loop().Now()) {
		e.stderrDropped.Add(1)
		e.metrics.stderrDropped.Inc()
		return
	}
	kv := []any{"pid", s.cmd.Process.Pid, "line", EscapeLine(line)}
	if truncated {
		kv = append(kv, "truncated", true)
	}
	if n := e.stderrDropped.Swap(0); n > 0 {
		kv = append(kv, "dropped", n)
	}
	e.stderrLogger.Warn("child stderr", kv...)
}

// closeStderrLocked stops reading the child's stderr and closes the pipe.
// Off the loop the watch is not removed first: epoll forgets a closed
// descriptor (see killAndWait). Caller holds s.mu.
func (s *session) closeStderrLocked(onLoop bool) {
	l := s.stderr
	if l == nil || l.fd < 0 {
		return
	}
	if l.stop != nil && onLoop {
		l.stop()
	}
	l.stop = nil
	_ = unix.Close(l.fd)
	l.fd = -1
}

// EscapeLine returns b as one line of printable text: Go's escapes
// (strconv.Quote's, without the surrounding quotes, which a logger adds
// as its format needs) for control bytes, invalid UTF-8 and backslashes.
func EscapeLine(b []byte) string {
	q := strconv.Quote(string(b))
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

// checkStderr checks the stderr option.
func checkStderr(v string) error {
	switch v {
	case StderrLog, StderrConnection, StderrDiscard:
		return nil
	}
	return fmt.Errorf("stderr must be %s, %s or %s, not %q", StderrLog, StderrConnection, StderrDiscard, v)
}
