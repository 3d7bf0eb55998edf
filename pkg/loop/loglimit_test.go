package loop

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

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
			logs := &testutil.PhraseCounter{Phrase: tc.phrase}
			logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
			_, l := startEngine(t, Config{Loops: 2, Logger: logger},
				ListenerSpec{Name: "flood", Network: "tcp", Address: "127.0.0.1:0", Module: tc.module, MaxInput: 1024})
			addr := strings.TrimPrefix(l.Addr(), "tcp://")
			closed, elapsed := testutil.Flood(t, addr, clients, strings.Repeat("x", 4096))
			if closed != clients {
				t.Fatalf("%d of %d clients were closed", closed, clients)
			}
			if n, most := logs.Count(), int64(elapsed/time.Second)+2; n < 1 || n > most {
				t.Fatalf("%d clients over %v logged %d %q lines, want 1 to %d", clients, elapsed, n, tc.phrase, most)
			}
		})
	}
}
