package api

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	var l LogLimit
	t0 := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{
		{0, true},                        // the first line
		{time.Millisecond, false},        // within the second
		{999 * time.Millisecond, false},  // still within it
		{time.Second, true},              // a second after the last let through
		{1500 * time.Millisecond, false}, // counted from that one
		{2 * time.Second, true},
	} {
		if got := l.Allow(t0.Add(tc.after)); got != tc.want {
			t.Errorf("Allow(+%v) = %v, want %v", tc.after, got, tc.want)
		}
	}
}

// TestLogLimitConcurrent: of many goroutines asking at the same instant,
// exactly one is let through.
func TestLogLimitConcurrent(t *testing.T) {
	var l LogLimit
	now := time.Unix(1700000000, 0)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Allow(now) {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Errorf("%d goroutines let through, want 1", n)
	}
}
