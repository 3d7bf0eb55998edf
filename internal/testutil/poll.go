package testutil

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// PollUntil polls cond every 10ms until it holds or bound passes, and
// reports whether it held.
func PollUntil(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LogBound is how long WaitLog waits for a line.
const LogBound = 15 * time.Second

// WaitLog waits until log, past its first after bytes, matches re, and
// returns the submatches. It fails t, showing the log, after LogBound.
func WaitLog(t testing.TB, log fmt.Stringer, re *regexp.Regexp, after int) []string {
	t.Helper()
	var m []string
	if !PollUntil(LogBound, func() bool {
		if text := log.String(); after <= len(text) {
			m = re.FindStringSubmatch(text[after:])
		}
		return m != nil
	}) {
		t.Fatalf("the log never matched %s:\n%s", re, log)
	}
	return m
}
