// Package looptest runs real event loops for the tests of the modules and
// of netd's other packages: one engine serving one listener, shut down
// when the test ends. (pkg/loop's own tests have their startEngine: this
// package imports pkg/loop, so those cannot use it.)
package looptest

import (
	"context"
	"testing"
	"time"

	"github.com/netd/netd/pkg/loop"
)

// Serve starts an engine of loops event loops serving spec, and stops it,
// with a 5 s drain, when tb ends. It returns the bound listener.
func Serve(tb testing.TB, loops int, spec loop.ListenerSpec) *loop.Listener {
	tb.Helper()
	e, err := loop.New(loop.Config{Loops: loops})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := e.Listen(spec)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return l
}
