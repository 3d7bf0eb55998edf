package main_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/netd/netd/internal/testutil"
)

// TestMain runs the end-to-end tests against the real binary, which
// testutil.Netd builds on first use, and fails them when a goroutine of
// the test (a log reader, a client, a peer's waiter) outlives them;
// testutil.Exit then removes the build and exits.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testutil.Exit))
}
