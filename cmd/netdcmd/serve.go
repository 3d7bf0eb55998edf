package netdcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

func newServeCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve [-c FILE]",
		Short: "Run the daemon",
		Long: "serve runs the listeners of a config file. Without -c it reads ./netd.yaml, " +
			"or, when there is none, runs the embedded default: line echo on tcp://127.0.0.1:8888.\n\n" +
			"SIGINT and SIGTERM stop accepting and drain every connection, bounded by shutdown_timeout.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &daemon{g: g, src: resolveConfig(file), stderr: cmd.ErrOrStderr()}
			return d.run()
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "config file (.yaml, .yml or .hcl)")
	return cmd
}

// daemon is one run of `netd serve`.
type daemon struct {
	g      *globals
	src    configSource
	stderr interface{ Write([]byte) (int, error) }
	log    hclog.Logger
	cfg    *config.Config
	engine *loop.Engine

	// reloadMu serializes reloads (SIGHUP and the admin endpoint) and
	// guards listeners and retired.
	reloadMu  sync.Mutex
	listeners []*runningListener
	// retired are listeners a reload replaced or removed; their
	// connections may still run, and their counts still belong to their
	// name.
	retired       []*runningListener
	reloadsOK     atomic.Uint64
	reloadsFailed atomic.Uint64
}

// runningListener pairs a config listener with the socket serving it.
type runningListener struct {
	cfg config.Listener
	lis *loop.Listener
}

// retire keeps a replaced or removed listener's counts. Caller holds
// reloadMu.
func (d *daemon) retire(r *runningListener) {
	d.retired = append(d.retired, &runningListener{cfg: r.cfg, lis: r.lis})
}

func (d *daemon) recordReload(err error) {
	if err != nil {
		d.reloadsFailed.Add(1)
	} else {
		d.reloadsOK.Add(1)
	}
}

func (d *daemon) run() error {
	// The file's log settings rank below flags and environment, and the
	// modules get their loggers at provisioning: read the file once to
	// learn its log settings, then load it for real with the right logger.
	first, err := d.src.load(hclog.NewNullLogger())
	if err != nil {
		return printConfigError(d.stderr, err)
	}
	d.g.applyFile(first.Log.Level, first.Log.Format)
	if err := d.g.checkLogFlags(); err != nil {
		return fmt.Errorf("%s: %w", d.src.name(), err)
	}
	d.log = newLogger(d.stderr, d.g.level(), d.g.format())
	d.cfg, err = d.src.load(d.log)
	if err != nil {
		return printConfigError(d.stderr, err)
	}

	// Signals are caught before the first socket opens, so that an early
	// SIGTERM still gets a clean shutdown.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)

	if err := d.start(); err != nil {
		return fmt.Errorf("%s: %w", d.src.name(), err)
	}
	return d.wait(signals)
}

// start binds every listener, drops privileges, then starts the loops.
// Nothing is served unless everything could be bound.
func (d *daemon) start() error {
	engine, err := loop.New(loop.Config{
		Loops:          d.cfg.Loops,
		MaxConnections: d.cfg.MaxConnections,
		Logger:         d.log.Named("loop"),
	})
	if err != nil {
		return err
	}
	d.engine = engine
	abort := func(err error) error {
		_ = engine.Shutdown(context.Background())
		return err
	}
	for i := range d.cfg.Listeners {
		spec, err := d.listenerSpec(&d.cfg.Listeners[i])
		if err != nil {
			return abort(err)
		}
		l, err := engine.Listen(spec)
		if err != nil {
			return abort(err)
		}
		d.listeners = append(d.listeners, &runningListener{cfg: d.cfg.Listeners[i], lis: l})
	}
	if err := dropPrivileges(d.cfg.User, d.cfg.Group); err != nil {
		return abort(err)
	}
	for _, l := range d.cfg.Listeners {
		if s, ok := l.Instance.(api.Starter); ok {
			if err := s.Start(); err != nil {
				return abort(fmt.Errorf("listener %q: module %s: start: %w", l.Name, l.Module, err))
			}
		}
	}
	if err := engine.Start(); err != nil {
		return abort(err)
	}
	kv := []any{"loops", engine.Loops()}
	for _, l := range engine.Listeners() {
		kv = append(kv, l.Name(), l.Addr())
	}
	d.log.Info("listening", kv...)
	return nil
}

// listenerSpec turns a config listener into what the loop binds.
func (d *daemon) listenerSpec(l *config.Listener) (loop.ListenerSpec, error) {
	spec := loop.ListenerSpec{
		Name:           l.Name,
		Network:        l.Addr.Scheme,
		Address:        l.Addr.Host,
		Module:         l.Instance,
		MaxConnections: l.MaxConnections,
		IdleTimeout:    l.IdleTimeout,
		Logger:         d.log.Named("listener." + l.Name),
	}
	switch l.Addr.Scheme {
	case "unix":
		spec.Address = l.Addr.Path
	case "fd":
		return spec, fmt.Errorf("listener %q: %s: socket activation is not supported yet", l.Name, l.Addr.String())
	}
	return spec, nil
}

// wait serves until SIGINT or SIGTERM, then drains.
func (d *daemon) wait(signals <-chan os.Signal) error {
	for sig := range signals {
		switch sig {
		case syscall.SIGHUP:
			d.log.Info("SIGHUP: reloading", "config", d.src.name())
			_ = d.reload()
		default:
			return d.shutdown(sig, signals)
		}
	}
	return nil
}

// shutdown drains, bounded by shutdown_timeout; a second SIGINT or SIGTERM
// cuts the drain short.
func (d *daemon) shutdown(sig os.Signal, signals <-chan os.Signal) error {
	timeout := d.cfg.ShutdownTimeout
	d.log.Info("draining", "signal", sig.String(), "connections", d.engine.ActiveConnections(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		for s := range signals {
			if s != syscall.SIGHUP {
				d.log.Warn("second signal: closing every connection now", "signal", s.String())
				cancel()
				return
			}
		}
	}()
	start := time.Now()
	err := d.engine.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		d.log.Error("shutdown", "error", err)
		return reportedError{err}
	}
	if err != nil {
		d.log.Warn("drain cut short; remaining connections closed", "error", err)
	}
	d.log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond))
	return nil
}
