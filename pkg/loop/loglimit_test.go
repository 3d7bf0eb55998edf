package loop

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/modules/api"
)

// phraseCounter counts the log lines that contain a phrase.
type phraseCounter struct {
	phrase string
	n      atomic.Int64
}

func (w *phraseCounter) Write(p []byte) (int, error) {
	w.n.Add(int64(bytes.Count(p, []byte(w.phrase))))
	return len(p), nil
}

// panicOnRead is a module with a bug any client can reach.
type panicOnRead struct{ lineEcho }

func (*panicOnRead) OnReadable(api.Conn) { panic("bug") }

// TestClientTriggeredLogsAreRateLimited: a thousand clients that each make
// the loop log a warning (the input bound, a module's panic) are each
// closed, yet the warning reaches the log at most once a second.
func TestClientTriggeredLogsAreRateLimited(t *testing.T) {
	const clients = 1000
	for _, tc := range []struct {
		name, phrase string
		module       api.Module
	}{
		{"input bound", "input bound exceeded", &inputHoarder{}},
		{"module panic", "module panicked", &panicOnRead{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &phraseCounter{phrase: tc.phrase}
			logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
			_, l := startEngine(t, Config{Loops: 2, Logger: logger},
				ListenerSpec{Name: "flood", Network: "tcp", Address: "127.0.0.1:0", Module: tc.module, MaxInput: 1024})
			addr := strings.TrimPrefix(l.Addr(), "tcp://")
			payload := strings.Repeat("x", 4096)

			start := time.Now()
			var closed atomic.Int64
			next := make(chan int, clients)
			for i := range clients {
				next <- i
			}
			close(next)
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
						if _, err := io.Copy(io.Discard, c); !isNetTimeout(err) {
							closed.Add(1) // EOF or a reset: the loop closed it
						}
						c.Close()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			if closed.Load() != clients {
				t.Fatalf("%d of %d clients were closed", closed.Load(), clients)
			}
			if n, most := logs.n.Load(), int64(elapsed/time.Second)+2; n < 1 || n > most {
				t.Fatalf("%d clients over %v logged %d %q lines, want 1 to %d", clients, elapsed, n, tc.phrase, most)
			}
		})
	}
}
