package echo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/looptest"
	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
)

// TestLineTooLongLogIsRateLimited: a thousand clients that each send a
// line over max_line_bytes are each closed, yet the warning, which any
// client can trigger, reaches the log at most once a second.
func TestLineTooLongLogIsRateLimited(t *testing.T) {
	const clients = 1000
	logs := &testutil.PhraseCounter{Phrase: "line too long"}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	mod := new(echo.Echo)
	err := mod.Provision(api.Setup{Listener: "flood", Network: "tcp", Options: apitest.Options(t, "max_line_bytes: 16"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l := looptest.Serve(t, 2, loop.ListenerSpec{Name: "flood", Network: "tcp", Address: "127.0.0.1:0", Module: mod})
	addr := strings.TrimPrefix(l.Addr(), "tcp://")

	closed, elapsed := testutil.Flood(t, addr, clients, strings.Repeat("x", 40)+"\n")
	if closed != clients {
		t.Fatalf("%d of %d clients were closed", closed, clients)
	}
	// At most one line a second, and one at the start.
	if n, most := logs.Count(), int64(elapsed/time.Second)+2; n < 1 || n > most {
		t.Fatalf("%d clients over %v logged %d \"line too long\" lines, want 1 to %d", clients, elapsed, n, most)
	}
}
