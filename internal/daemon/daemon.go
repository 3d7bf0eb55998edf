// Package daemon is netd serving a config: it binds the listeners, runs
// the event loops and the admin endpoint, reloads on SIGHUP, upgrades in
// place on SIGUSR2, talks to systemd, drops privileges and drains on
// SIGINT or SIGTERM. The command line (cmd/netdcmd) builds a Daemon from
// its flags and maps what Run returns to an exit code.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/admin"
	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/internal/systemd"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

// ErrLogged marks an error that Run has logged already, so that the
// caller reports it by its exit code alone.
var ErrLogged = errors.New("netd: error logged")

// Options is what New needs.
type Options struct {
	// Source is the config to run.
	Source Source
	// Log receives the daemon's log.
	Log io.Writer
	// Logging gives the log level and format in force from the config
	// file's (either may be empty): the command line ranks its flags and
	// the environment above the file. It is asked again when a reload
	// changes log.level. nil takes the file's settings as they are.
	Logging func(fileLevel, fileFormat string) (level, format string, err error)
	// Version and Commit are reported by the admin endpoint and metrics.
	Version, Commit string
}

// Daemon is one run of `netd serve`.
type Daemon struct {
	opts   Options
	src    Source
	log    hclog.Logger
	cfg    *config.Config
	engine *loop.Engine

	// reloadMu serializes reloads (SIGHUP and the admin endpoint) and
	// guards listeners, retired and totals.
	reloadMu  sync.Mutex
	listeners []*runningListener
	// retired are listeners a reload replaced by one with the same name
	// and module (forgetEnded drops the others): their connections may
	// still run, and their counts belong to their successor's series.
	retired []*runningListener
	// totals keeps the final counts of retired listeners by name and
	// module, for as long as a listener carries them on.
	totals map[admin.ListenerID]admin.ListenerSnapshot

	ready atomic.Bool
	// stopping is set when a stop begins, before drain_delay: /readyz
	// fails from then on.
	stopping     atomic.Bool
	admin        *admin.Server
	metrics      *admin.Metrics
	upg          *tableflip.Upgrader
	exe          string                // the binary an upgrade starts (upgrade.go)
	adminKey     string                // the admin socket's key for an upgrade
	adminAdopted bool                  // the admin socket came from an upgrade's old process
	activated    map[string][]*os.File // sockets systemd passed, by name
	// nextCerts are the TLS certificates of the specs being built, by
	// listener name, until the listener they are for runs (keepCerts).
	nextCerts map[string]*tlsCerts
}

// runningListener pairs a config listener with the socket serving it.
type runningListener struct {
	cfg   config.Listener
	lis   *loop.Listener
	certs *tlsCerts // nil without TLS
}

// idOf is what a listener's series belong to: a reload that keeps a
// listener's name and module keeps its series.
func idOf(l config.Listener) admin.ListenerID {
	return admin.ListenerID{Listener: l.Name, Module: l.Module}
}

// retire keeps a replaced or removed listener's counts, until
// forgetEnded finds that no listener carries them on. Caller holds
// reloadMu.
func (d *Daemon) retire(r *runningListener) {
	d.retired = append(d.retired, &runningListener{cfg: r.cfg, lis: r.lis})
}

// configEnv is what the daemon's module instances get: its logger, and a
// registerer per listener that remembers what the listener registered,
// so that forgetEnded can take the series away with the listener.
func (d *Daemon) configEnv() config.Env {
	return config.Env{Logger: d.log, Metrics: d.metrics.ListenerRegisterer}
}

func (d *Daemon) recordReload(err error) {
	d.metrics.Reloaded(d.configHash(), time.Now(), err)
}

// New loads the config and provisions its modules; it opens no socket.
// A config that does not load comes back as config.Errors or
// *config.Error when the file has problems, as the error reading it
// otherwise.
func New(opts Options) (*Daemon, error) {
	d := &Daemon{opts: opts, src: opts.Source, totals: map[admin.ListenerID]admin.ListenerSnapshot{}}
	// The file's log settings rank below flags and environment, and the
	// modules get their loggers at provisioning: read the file once to
	// learn its log settings, then load it for real with the right logger.
	first, err := d.src.load(config.Env{})
	if err != nil {
		return nil, err
	}
	level, format, err := d.logging(first.Log.Level, first.Log.Format)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.src.Name(), err)
	}
	d.log = newLogger(opts.Log, level, format)
	// The metrics exist before the modules, which register their own.
	d.metrics = admin.NewMetrics(daemonSource{d}, opts.Version, opts.Commit)
	if d.cfg, err = d.src.load(d.configEnv()); err != nil {
		return nil, err
	}
	return d, nil
}

// logging is Options.Logging, or the file's settings without it.
func (d *Daemon) logging(fileLevel, fileFormat string) (level, format string, err error) {
	if d.opts.Logging == nil {
		return fileLevel, fileFormat, nil
	}
	return d.opts.Logging(fileLevel, fileFormat)
}

// newLogger builds the daemon's root logger. Sub-loggers are named where
// things are wired (listener.NAME, loop).
func newLogger(w io.Writer, level, format string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "netd",
		Level:      hclog.LevelFromString(level),
		Output:     w,
		JSONFormat: format == "json",
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
}

// Run serves the config until SIGINT or SIGTERM, until an upgrade's new
// process is ready, or until ctx is done; then it drains, bounded by
// shutdown_timeout. A signal first fails /readyz and serves on for
// drain_delay (drainDelay). A start-up failure comes back naming the config.
func (d *Daemon) Run(ctx context.Context) error {
	// Signals are caught before the first socket opens, so that an early
	// SIGTERM still gets a clean shutdown.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(signals)
	return d.run(ctx, signals, true)
}

// run is Run with the signals it acts on. Without upgrades (tests:
// tableflip allows one upgrader per process, for good) SIGUSR2 does
// nothing.
func (d *Daemon) run(ctx context.Context, signals <-chan os.Signal, upgrades bool) error {
	if err := d.systemdSockets(); err != nil {
		return fmt.Errorf("%s: %w", d.src.Name(), err)
	}
	if upgrades {
		upg, err := d.newUpgrader()
		if err != nil {
			d.closeActivated()
			return fmt.Errorf("%s: %w", d.src.Name(), err)
		}
		d.upg = upg
		defer upg.Stop()
	}
	if err := d.start(); err != nil {
		d.closeActivated()
		return fmt.Errorf("%s: %w", d.src.Name(), err)
	}
	d.closeActivated()
	defer d.stopAdmin()
	return d.wait(ctx, signals)
}

// Addrs maps each running listener's name to the address it is bound to
// (the real port where the config asked for port 0); nil until every
// listener listens. Any goroutine.
func (d *Daemon) Addrs() map[string]string {
	if !d.ready.Load() { // stored once d.engine is set
		return nil
	}
	out := map[string]string{}
	for _, l := range d.engine.Listeners() {
		out[l.Name()] = l.Addr()
	}
	return out
}

// start binds every listener, drops privileges, then starts the loops.
// Nothing is served unless everything could be bound. Without an
// upgrader (d.upg nil) it neither adopts nor reports to a parent.
func (d *Daemon) start() error {
	d.logWarnings(d.cfg)
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
	adopted := 0 // sockets an upgrade's old process passed
	for i := range d.cfg.Listeners {
		cl := &d.cfg.Listeners[i]
		inherited, err := d.inheritedFile(cl)
		if err != nil {
			return abort(err)
		}
		var spec loop.ListenerSpec
		if inherited != nil {
			adopted++
			spec = d.adoptedSpec(cl, inherited)
		} else if spec, err = d.listenerSpec(cl); err != nil {
			return abort(err)
		}
		l, err := engine.Listen(spec)
		if inherited != nil {
			inherited.Close() // the listener holds its own dup
		}
		if err != nil {
			return abort(err)
		}
		r := &runningListener{cfg: *cl, lis: l}
		d.keepCerts(r)
		d.listeners = append(d.listeners, r)
	}
	d.nextCerts = nil
	// The admin socket is bound with the listeners, as root if netd
	// starts as root (a unix socket in a root-owned directory), but served
	// only once privileges are dropped: no request runs as root.
	if err := d.bindAdmin(); err != nil {
		return abort(err)
	}
	if d.upg != nil && d.upg.HasParent() {
		d.log.Info("upgrade: adopted the old process's sockets; bound only what the config added",
			"adopted_listeners", adopted, "listeners", len(d.cfg.Listeners), "admin_adopted", d.adminAdopted)
	}
	if err := dropPrivs(d.cfg.User, d.cfg.Group, d.log); err != nil {
		d.stopAdmin()
		return abort(err)
	}
	for _, l := range d.cfg.Listeners {
		if s, ok := l.Instance.(api.Starter); ok {
			if err := s.Start(); err != nil {
				d.stopAdmin()
				return abort(fmt.Errorf("listener %q: module %s: start: %w", l.Name, l.Module, err))
			}
		}
	}
	if err := engine.Start(); err != nil {
		d.stopAdmin()
		return abort(err)
	}
	d.serveAdmin()
	d.ready.Store(true)
	kv := []any{"pid", os.Getpid(), "loops", engine.Loops(), "config", d.src.Name()}
	for _, l := range engine.Listeners() {
		kv = append(kv, l.Name(), l.Addr())
	}
	if d.admin != nil {
		kv = append(kv, "admin", d.admin.URL())
	}
	d.log.Info("listening", kv...)
	d.metrics.ConfigLoaded(d.configHash(), time.Now())
	if d.upg == nil {
		return nil
	}
	if err := d.upg.Ready(); err != nil {
		d.log.Warn("upgrade: cannot tell the old process we are ready", "error", err)
	}
	if d.upg.HasParent() {
		d.notify(systemd.ReadyAsMain)
	} else {
		d.notify(systemd.Ready)
	}
	return nil
}

// socketNetwork tells a passed socket's network from its type: the loop
// checks it against what the module serves.
func socketNetwork(f *os.File) string {
	if typ, _ := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_TYPE); typ == syscall.SOCK_DGRAM {
		return "udp"
	}
	return "tcp"
}

// listenerSpec turns a config listener into what the loop binds: its
// address, or for fd://NAME the socket systemd passed.
func (d *Daemon) listenerSpec(l *config.Listener) (loop.ListenerSpec, error) {
	spec := d.moduleSpec(l)
	switch l.Addr.Scheme {
	case "unix":
		spec.Network, spec.Address = "unix", l.Addr.Path
	case "fd":
		f, err := d.activatedFile(l)
		if err != nil {
			return spec, err
		}
		spec.File, spec.Network = f, socketNetwork(f)
	default:
		spec.Network, spec.Address = l.Addr.Scheme, l.Addr.Host
	}
	return spec, nil
}

// adoptedSpec is the spec of a listener that serves a socket it was handed
// (by an upgrade, or by its predecessor on reload) rather than one it binds.
func (d *Daemon) adoptedSpec(l *config.Listener, f *os.File) loop.ListenerSpec {
	spec := d.moduleSpec(l)
	switch l.Addr.Scheme {
	case "unix":
		spec.Network, spec.Address = "unix", l.Addr.Path
	case "fd":
		spec.Network = socketNetwork(f)
	default:
		spec.Network, spec.Address = l.Addr.Scheme, l.Addr.Host
	}
	spec.File, spec.OwnSocketFile = f, true
	return spec
}

// moduleSpec is the part of a listener's spec that is not its socket,
// with the mode and owner of a unix listener's socket file, which a
// listener replaced on its socket applies to the file it takes over.
func (d *Daemon) moduleSpec(l *config.Listener) loop.ListenerSpec {
	return loop.ListenerSpec{
		Name:           l.Name,
		Module:         l.Instance,
		MaxConnections: l.MaxConnections,
		IdleTimeout:    l.IdleTimeout,
		HighWatermark:  l.HighWatermark,
		LowWatermark:   l.LowWatermark,
		TLS:            d.tlsSpec(l),
		Logger:         d.log.Named("listener." + l.Name),
		Edge:           edgeSpec(l),
		SocketMode:     l.SocketMode,
		SocketUser:     l.SocketUser,
		SocketGroup:    l.SocketGroup,
	}
}

// wait serves until SIGINT or SIGTERM, until an upgrade's new process is
// ready, or until ctx is done, then drains.
func (d *Daemon) wait(ctx context.Context, signals <-chan os.Signal) error {
	var upgraded <-chan struct{}
	if d.upg != nil {
		upgraded = d.upg.Exit()
	}
	for {
		select {
		case sig := <-signals:
			switch sig {
			case syscall.SIGHUP:
				d.sighup()
			case syscall.SIGUSR2:
				if d.upg != nil {
					go d.upgrade()
				}
			default:
				d.notify(systemd.Stopping)
				if d.drainDelay(ctx, sig, signals, upgraded) {
					d.handOver()
					return d.shutdown("upgrade", signals)
				}
				return d.shutdown(sig.String(), signals)
			}
		case <-upgraded:
			// The new process serves now; systemd follows its MAINPID, so
			// this one does not report STOPPING.
			d.handOver()
			return d.shutdown("upgrade", signals)
		case <-ctx.Done():
			d.notify(systemd.Stopping)
			return d.shutdown(context.Cause(ctx).Error(), signals)
		}
	}
}

// sighup reloads the config file. The embedded default has none: that
// gets one line saying so, and counts as a failed reload.
func (d *Daemon) sighup() {
	if d.src.Embedded() {
		d.log.Warn("SIGHUP: cannot reload", "reason", d.Reload())
		return
	}
	d.log.Info("SIGHUP: reloading", "config", d.src.Name())
	d.notify(systemd.Reloading)
	_ = d.Reload()
	d.notify(systemd.Ready)
}

// drainDelay is the first phase of a stop on SIGINT or SIGTERM: /readyz
// fails at once, so that a load balancer's health check takes this
// process out of rotation, while it accepts and serves on for
// drain_delay, so that the connects the balancer still sends here until
// its check notices are served, not refused. A second SIGINT or SIGTERM,
// or ctx done, ends it early. Reloads and upgrades are refused meanwhile;
// an upgrade already under way that completes ends it and reports true.
func (d *Daemon) drainDelay(ctx context.Context, sig os.Signal, signals <-chan os.Signal, upgraded <-chan struct{}) (upgradeDone bool) {
	d.stopping.Store(true)
	d.reloadMu.Lock()
	delay := d.cfg.DrainDelay // a reload may have changed it
	d.reloadMu.Unlock()
	if delay <= 0 {
		return false
	}
	d.log.Info("stopping: /readyz fails; still accepting for drain_delay", "signal", sig.String(), "drain_delay", delay, "connections", d.engine.ActiveConnections())
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return false
		case s := <-signals:
			switch s {
			case syscall.SIGINT, syscall.SIGTERM:
				d.log.Warn("second signal: drain_delay cut short", "signal", s.String())
				return false
			default:
				d.log.Warn("stopping: signal ignored", "signal", s.String())
			}
		case <-upgraded:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// shutdown drains, bounded by shutdown_timeout; a second SIGINT or SIGTERM
// cuts the drain short.
func (d *Daemon) shutdown(why string, signals <-chan os.Signal) error {
	d.reloadMu.Lock()
	timeout := d.cfg.ShutdownTimeout // a reload may have changed it
	d.reloadMu.Unlock()
	d.log.Info("draining", "cause", why, "connections", d.engine.ActiveConnections(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case s := <-signals:
				if s == syscall.SIGINT || s == syscall.SIGTERM {
					d.log.Warn("second signal: closing every connection now", "signal", s.String())
					cancel()
					return
				}
			case <-stop:
				return
			}
		}
	}()
	start := time.Now()
	err := d.engine.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		d.log.Error("shutdown", "error", err)
		return fmt.Errorf("%w: shutdown: %w", ErrLogged, err)
	}
	if err != nil {
		d.log.Warn("drain cut short; remaining connections closed", "error", err)
	}
	d.log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond))
	return nil
}
