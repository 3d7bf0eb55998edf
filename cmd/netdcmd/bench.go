package netdcmd

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/netd/netd/internal/bench"
)

// newBenchCmd is `netd bench ADDRESS`, the load and soak tool; it lives in
// internal/bench. Bad flag values are usage errors (exit 2); a run with
// mismatches, or in which nothing was echoed, exits 1 after its report.
func newBenchCmd() *cobra.Command {
	c := bench.NewCommand()
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if errors.Is(err, bench.ErrOptions) {
			return usageError{err}
		}
		return err
	}
	return c
}
