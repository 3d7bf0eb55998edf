package loop

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// engine a test starts must be shut down, and every loop goroutine,
// client and helper must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
