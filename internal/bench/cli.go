package bench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand is `netd bench ADDRESS`. The report goes to the command's
// output, progress and mismatch details to its error output. The command's
// error wraps ErrOptions for bad flag values or ErrNotListening (nothing
// ran, nothing printed), ErrMismatch or ErrNothingEchoed after a failed run;
// the report is printed in the latter cases too. SIGINT and SIGTERM end the run early, and the report is printed.
func NewCommand() *cobra.Command {
	var (
		o      Options
		quiet  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "bench ADDRESS",
		Short: "Load a line-echo service and verify every byte it echoes",
		Long: `bench opens connections to a line-echo service and keeps them busy for a
while: each writes a batch of lines (one, ping-pong, unless --in-flight says
more), reads the echo and checks every byte of it, in order, against what it
sent. It prints progress once a second and then lines/s, MiB/s, latency
percentiles, errors and mismatches; given the server's PID, also the server's
CPU time per line and its peak RSS.

ADDRESS is tcp://host:port (tcp4://, tcp6://), host:port, or unix:///path.
With --tls, bench speaks TLS; with --reconnect --cycle-lines 1, every line
pays for a handshake, and connects/s is handshakes/s.
The run starts once ADDRESS accepts a connection, waiting up to --timeout for
it, so bench may be started together with the server.

For a soak run, add random lines, fragmented writes, half-closes and
reconnects:

  netd bench -c 1000 -d 5m --random --fragment --half-close 0.3 --reconnect --server-pid PID 127.0.0.1:8888

The exit status is 1 when an echoed byte differed from the byte sent (or was
lost after a half-close) or when nothing was echoed at all.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Address = args[0]
			stderr := cmd.ErrOrStderr()
			if !quiet {
				o.Progress = stderr
			}
			o.Log = stderr
			if _, err := o.withDefaults(); err != nil {
				return err
			}
			cmd.SilenceUsage = true // from here on, errors are about the run

			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop() // a second signal kills the process as usual
			}()

			rep, err := Run(ctx, o)
			if errors.Is(err, ErrOptions) || errors.Is(err, ErrNotListening) {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				b, jerr := json.Marshal(rep)
				if jerr != nil {
					return jerr
				}
				out.Write(append(b, '\n'))
			} else {
				rep.WriteText(out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Conns, "conns", "c", DefaultConns, "concurrent connections")
	f.IntVarP(&o.LineSize, "line-size", "s", DefaultLineSize, "bytes per line, '\\n' included (the maximum, with --random)")
	f.IntVarP(&o.InFlight, "in-flight", "n", DefaultInFlight, "lines in flight per connection: 1 is ping-pong, more is pipelined")
	f.DurationVarP(&o.Duration, "duration", "d", DefaultDuration, "how long to run")
	f.IntVar(&o.Lines, "lines", 0, "stop each connection after this many lines (0: run for --duration, which still bounds the run)")
	f.BoolVar(&o.Fragment, "fragment", false, "write each batch in random fragments: random split points, tiny writes")
	f.BoolVar(&o.RandomLines, "random", false, "random line lengths (1..line-size) and random bytes: NUL, \\r and invalid UTF-8 included")
	f.Float64Var(&o.HalfClose, "half-close", 0, "probability (0..1) that a connection ends with a half-close, checking that everything, an unterminated tail too, comes back and then EOF")
	f.BoolVar(&o.Reconnect, "reconnect", false, "end each connection after a random number of lines and open a new one")
	f.IntVar(&o.CycleLines, "cycle-lines", DefaultCycleLines, "with --reconnect, the most lines a connection sends before it is replaced")
	f.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "longest wait for a connect (the first one too: the run starts once ADDRESS accepts), or for progress on a read or write")
	f.IntVar(&o.ServerPID, "server-pid", 0, "PID of the server: report its CPU time per line and peak RSS (from /proc)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the line contents (0: from the clock; the report shows the seed used)")
	f.BoolVar(&o.TLS, "tls", false, "speak TLS: each connection starts with a full handshake, verified against --tls-ca (or the system's CAs)")
	f.StringVar(&o.TLSCA, "tls-ca", "", "with --tls, a PEM file of the CAs to trust")
	f.BoolVar(&o.TLSInsecure, "tls-insecure", false, "with --tls, do not verify the server's certificate")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}
