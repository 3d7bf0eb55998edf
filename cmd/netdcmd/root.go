// Package netdcmd is netd's command line: serve, validate, modules,
// version, bench, reload. It holds the commands, their flags and the
// mapping of errors to exit codes; serve hands the config to
// internal/daemon, which runs it. A main package imports netdcmd together
// with the modules it wants (see cmd/netd) and calls Main, which is how a
// netd with out-of-tree modules is built.
package netdcmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// Exit codes, as README.md (Commands) fixes them.
const (
	ExitOK     = 0
	ExitError  = 1 // a config error or a start-up failure
	ExitUsage  = 2 // an unknown flag or command, a missing argument
	envPrefix  = "NETD"
	flagLevel  = "log-level"
	flagFormat = "log-format"
)

// usageError marks an error in how netd was invoked.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// reportedError marks an error whose details were already printed (config
// problems, one line each), so Run prints nothing more.
type reportedError struct{ err error }

func (r reportedError) Error() string { return r.err.Error() }

// Main runs netd with the process's arguments and exits with its code.
func Main() {
	os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
}

// Run runs netd with args and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	var rep reportedError
	if errors.As(err, &rep) {
		return ExitError
	}
	var ue usageError
	// cobra reports unknown commands and bad flags before any RunE runs.
	if errors.As(err, &ue) || !ranCommand(cmd) {
		fmt.Fprintf(stderr, "netd: %v\nRun 'netd --help' for usage.\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "netd: %v\n", err)
	return ExitError
}

const ranAnnotation = "netd-ran"

func ranCommand(cmd *cobra.Command) bool {
	return cmd != nil && cmd.Annotations[ranAnnotation] == "yes"
}

// globals are the settings every command shares, resolved flag over
// environment over config file over default.
type globals struct {
	v *viper.Viper
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{v: viper.New()}
	root := &cobra.Command{
		Use:           "netd",
		Short:         "netd is a pluggable multi-protocol network daemon",
		Long:          "netd serves many listeners (TCP, UDP, unix sockets) from one shared epoll event loop, each bound to a module such as echo.",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations == nil {
				cmd.Annotations = map[string]string{}
			}
			cmd.Annotations[ranAnnotation] = "yes"
			return g.checkLogFlags()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q", args[0])}
			}
			return cmd.Help()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.String(flagLevel, "", "log level: trace, debug, info, warn or error (env NETD_LOG_LEVEL)")
	pf.String(flagFormat, "", "log format: text or json (env NETD_LOG_FORMAT)")
	_ = g.v.BindPFlag("log.level", pf.Lookup(flagLevel))
	_ = g.v.BindPFlag("log.format", pf.Lookup(flagFormat))
	_ = g.v.BindEnv("log.level", envPrefix+"_LOG_LEVEL")
	_ = g.v.BindEnv("log.format", envPrefix+"_LOG_FORMAT")
	g.v.SetDefault("log.level", "info")
	g.v.SetDefault("log.format", "text")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newServeCmd(g),
		newValidateCmd(g),
		newModulesCmd(),
		newVersionCmd(),
		newBenchCmd(),
		newReloadCmd(),
	)
	// cobra would add its completion command only at Execute; added here,
	// it gets the usage errors of the others: `netd completion nosuch`
	// exits 2 instead of printing help and exiting 0.
	root.InitDefaultCompletionCmd()
	if comp, _, err := root.Find([]string{"completion"}); err == nil && comp != root {
		comp.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs makes argument-count errors usage errors (exit 2).
func wrapArgs(c *cobra.Command) {
	if c.Args == nil {
		c.Args = cobra.NoArgs
	}
	inner := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := inner(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// checkLogFlags rejects a bad --log-level or --log-format (or environment
// value) before anything runs.
func (g *globals) checkLogFlags() error {
	if err := checkLevel(g.v.GetString("log.level")); err != nil {
		return usageError{err}
	}
	if err := checkFormat(g.v.GetString("log.format")); err != nil {
		return usageError{err}
	}
	return nil
}

// applyFile makes the config file's log settings the fallback below flags
// and environment.
func (g *globals) applyFile(level, format string) {
	if level != "" {
		g.v.SetDefault("log.level", level)
	}
	if format != "" {
		g.v.SetDefault("log.format", format)
	}
}

// logging is daemon.Options.Logging: the config file's log settings
// under flags and environment.
func (g *globals) logging(fileLevel, fileFormat string) (level, format string, err error) {
	g.applyFile(fileLevel, fileFormat)
	if err := g.checkLogFlags(); err != nil {
		return "", "", err
	}
	return strings.ToLower(g.v.GetString("log.level")), strings.ToLower(g.v.GetString("log.format")), nil
}
