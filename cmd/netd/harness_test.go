package main_test

import (
	"testing"

	"github.com/netd/netd/internal/testutil"
)

// TestMain runs the end-to-end tests against the real binary, which
// testutil.Netd builds on first use; testutil.Exit removes it.
func TestMain(m *testing.M) {
	testutil.Exit(m.Run())
}
