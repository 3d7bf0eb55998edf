package netdcmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/netd/netd/pkg/modules/api"
)

// Set at build time: go build -ldflags "-X github.com/netd/netd/cmd/netdcmd.Version=v1.2.3 -X ...Commit=abc".
var (
	Version = "dev"
	Commit  = ""
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print netd's version, commit and Go version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit := Commit
			if commit == "" {
				commit = "unknown"
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							commit = s.Value
						}
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "netd %s\ncommit %s\n%s %s/%s\n", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func newModulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "modules",
		Short: "List the registered modules",
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos := api.Registered()
			width := 0
			for _, m := range infos {
				width = max(width, len(m.Name))
			}
			for _, m := range infos {
				fmt.Fprintf(cmd.OutOrStdout(), "%-*s  %s\n", width, m.Name, m.Description)
			}
			return nil
		},
	}
}
