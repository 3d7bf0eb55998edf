package testutil

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// PhraseCounter is a log sink that counts the occurrences of Phrase, for
// tests that a client-triggered warning is rate-limited. Safe for
// concurrent use.
type PhraseCounter struct {
	Phrase string
	n      atomic.Int64
}

func (w *PhraseCounter) Write(p []byte) (int, error) {
	w.n.Add(int64(bytes.Count(p, []byte(w.Phrase))))
	return len(p), nil
}

// Count returns how many times Phrase was written.
func (w *PhraseCounter) Count() int64 { return w.n.Load() }

// Flood has clients connect to the tcp address addr one after another,
// 32 at a time, each send payload and read until the server closes
// (every read bounded by 10 s). It returns how many were closed by the
// server (EOF or a reset, not a timeout) and how long the flood took.
func Flood(t testing.TB, addr string, clients int, payload string) (closed int64, elapsed time.Duration) {
	t.Helper()
	var n atomic.Int64
	next := make(chan int, clients)
	for i := range clients {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.WriteString(c, payload)
				_, err = io.Copy(io.Discard, c)
				if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
					n.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}
