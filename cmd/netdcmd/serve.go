package netdcmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/netd/netd/internal/daemon"
)

func newServeCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve [-c FILE]",
		Short: "Run the daemon",
		Long: "serve runs the listeners of a config file. Without -c it reads ./netd.yaml from the working directory, " +
			"or, when there is none, runs the embedded default: line echo on tcp://127.0.0.1:8888. " +
			"The listening line names the config in force (config=./netd.yaml, the file given, or embedded default).\n\n" +
			"SIGINT and SIGTERM stop accepting and drain every connection, bounded by shutdown_timeout.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := daemon.New(daemon.Options{
				Source:  daemon.FindSource(file),
				Log:     cmd.ErrOrStderr(),
				Logging: g.logging,
				Version: Version,
				Commit:  Commit,
			})
			if err != nil {
				return printConfigError(cmd.ErrOrStderr(), err)
			}
			if err := d.Run(context.Background()); err != nil {
				if errors.Is(err, daemon.ErrLogged) {
					return reportedError{err}
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "config file (.yaml, .yml or .hcl)")
	return cmd
}
