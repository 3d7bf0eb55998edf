package netdcmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/netd/netd/internal/config"
)

func newValidateCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -c FILE",
		Short: "Check a config file without binding anything",
		Long: "validate parses and checks a config, the options of every module included, without opening a socket. It prints one summary line and exits 0, or prints FILE:LINE:COL: message for each problem and exits 1. " +
			"What is allowed but unsafe (an exec listener without instances, a unix socket in a world-writable directory) gets a FILE:LINE:COL: warning: line on stderr, and the exit code stays 0.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("validate needs -c FILE")}
			}
			cfg, err := config.LoadEnv(file, config.Env{Logger: moduleWarnings(cmd.ErrOrStderr())})
			if err != nil {
				return printConfigError(cmd.ErrOrStderr(), err)
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			names := make([]string, 0, len(cfg.Listeners))
			for _, l := range cfg.Listeners {
				names = append(names, fmt.Sprintf("%s (%s, %s)", l.Name, l.Addr.String(), l.Module))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d listener%s: %s\n", file, len(names), plural(len(names)), strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "config file to check (.yaml, .yml or .hcl)")
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// moduleWarnings is the logger validate gives the modules: what one warns
// about as it checks its options (exec children that would run as root)
// is printed on stderr, one line each, and validate still exits 0.
func moduleWarnings(w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "netd", Level: hclog.Warn, Output: w, DisableTime: true})
}
