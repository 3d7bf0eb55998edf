package echo_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// lineCounter counts the log lines that contain a phrase.
type lineCounter struct {
	phrase string
	n      atomic.Int64
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.n.Add(int64(bytes.Count(p, []byte(w.phrase))))
	return len(p), nil
}

// TestLineTooLongLogIsRateLimited: a thousand clients that each send a
// line over max_line_bytes are each closed, yet the warning, which any
// client can trigger, reaches the log at most once a second.
func TestLineTooLongLogIsRateLimited(t *testing.T) {
	const clients = 1000
	logs := &lineCounter{phrase: "line too long"}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	mod := new(echo.Echo)
	err := mod.Provision(api.Setup{Listener: "flood", Network: "tcp", Options: apitest.Options(t, "max_line_bytes: 16"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e, err := loop.New(loop.Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(loop.ListenerSpec{Name: "flood", Network: "tcp", Address: "127.0.0.1:0", Module: mod})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	addr := strings.TrimPrefix(l.Addr(), "tcp://")

	start := time.Now()
	var wg sync.WaitGroup
	var closed atomic.Int64
	next := make(chan int, clients)
	for i := range clients {
		next <- i
	}
	close(next)
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
				_, _ = io.WriteString(c, strings.Repeat("x", 40)+"\n")
				if _, err := io.Copy(io.Discard, c); err == nil || !isTimeout(err) {
					closed.Add(1) // EOF or a reset: netd closed it
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
	// At most one line a second, and one at the start.
	if n, most := logs.n.Load(), int64(elapsed/time.Second)+2; n < 1 || n > most {
		t.Fatalf("%d clients over %v logged %d \"line too long\" lines, want 1 to %d", clients, elapsed, n, most)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
