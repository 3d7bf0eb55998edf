package daemon

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/admin"
	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

// Reload re-reads the config file and applies it: listeners are matched by
// name; added ones start, removed ones stop accepting and let their
// connections finish, changed ones are replaced (their connections finish
// under the old settings), unchanged ones are not touched. The new config
// is loaded and validated whole, and every new socket bound, before
// anything changes; on any failure the daemon runs on unchanged.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	err := d.applyReload()
	d.forgetEnded()
	d.recordReload(err)
	return err
}

// forgetEnded drops what the daemon keeps for every listener that no
// running listener carries on under the same name and module: the final
// counts of its retired instances, those of its instances still draining,
// and the collectors its module registered. Its series leave /metrics, so
// that a dashboard does not show a listener that is gone at its last
// values forever. A failed reload runs it too: the instances it
// provisioned for listeners that do not run registered collectors that
// nothing will ever count in. Caller holds reloadMu.
func (d *Daemon) forgetEnded() {
	running := make(map[admin.ListenerID]bool, len(d.listeners))
	ids := make([]admin.ListenerID, 0, len(d.listeners))
	for _, r := range d.listeners {
		running[idOf(r.cfg)] = true
		ids = append(ids, idOf(r.cfg))
	}
	kept := d.retired[:0]
	for _, r := range d.retired {
		if running[idOf(r.cfg)] {
			kept = append(kept, r)
		}
	}
	clear(d.retired[len(kept):])
	d.retired = kept
	for id := range d.totals {
		if !running[id] {
			delete(d.totals, id)
		}
	}
	d.metrics.RetainListeners(ids)
}

func (d *Daemon) applyReload() error {
	defer func() { d.nextCerts = nil }()
	if d.src.Embedded() {
		return errNoFile
	}
	cfg, err := d.src.load(d.configEnv())
	if err != nil {
		d.logConfigError("reload failed; running config unchanged", err)
		return err
	}

	old := map[string]*runningListener{}
	for _, r := range d.listeners {
		old[r.cfg.Name] = r
	}
	type change struct {
		r    *runningListener // nil: added
		next config.Listener
		keys []string // the keys that differ from the running listener's
	}
	var changes []change
	var same []change // listeners left alone: their certificates are swapped
	next := map[string]bool{}
	for _, l := range cfg.Listeners {
		next[l.Name] = true
		r := old[l.Name]
		var keys []string
		if r != nil {
			if keys = r.cfg.Differs(l); keys == nil {
				same = append(same, change{r: r, next: l})
				continue
			}
		}
		changes = append(changes, change{r: r, next: l, keys: keys})
	}

	// Bind every listener that needs a new socket first, so that an
	// address in use fails the reload before anything changed.
	bound := map[string]*os.File{}
	defer func() {
		for _, f := range bound {
			f.Close()
		}
	}()
	for _, ch := range changes {
		if ch.r != nil && ch.r.cfg.Addr == ch.next.Addr {
			continue // the socket is handed over, not bound again
		}
		spec, err := d.listenerSpec(&ch.next)
		if err == nil {
			bound[ch.next.Name], err = loop.BindListener(spec)
		}
		if err != nil {
			err = fmt.Errorf("listener %q: %w", ch.next.Name, err)
			d.log.Error("reload failed; running config unchanged", "config", d.src.Name(), "error", err)
			return err
		}
	}

	for _, ch := range same {
		d.swapCerts(ch.r, ch.next)
	}
	for _, ch := range changes {
		name := ch.next.Name
		var spec loop.ListenerSpec
		if ch.r != nil && ch.r.cfg.Addr == ch.next.Addr {
			// Same socket, handed over: fd:// listeners included, whose
			// socket systemd passed only once.
			prev := ch.r.lis.Spec()
			spec = d.moduleSpec(&ch.next)
			spec.Network, spec.Address = prev.Network, prev.Address
		} else if spec, err = d.listenerSpec(&ch.next); err != nil {
			d.log.Error("reload: cannot start listener", "listener", name, "error", err)
			continue
		}
		if f := bound[name]; f != nil {
			spec.File, spec.OwnSocketFile = f, true
		}
		if st, ok := ch.next.Instance.(api.Starter); ok {
			if err := st.Start(); err != nil {
				d.log.Error("reload: module did not start; the listener keeps its old settings", "listener", name, "module", ch.next.Module, "error", err)
				continue
			}
		}
		if ch.r == nil {
			l, err := d.engine.Listen(spec)
			if err != nil {
				d.log.Error("reload: cannot start listener", "listener", name, "error", err)
				continue
			}
			r := &runningListener{cfg: ch.next, lis: l}
			d.keepCerts(r)
			d.listeners = append(d.listeners, r)
			d.log.Info("reload: listener added", "listener", name, "address", l.Addr(), "module", ch.next.Module)
			continue
		}
		prev := ch.r.lis
		l, err := d.engine.Replace(prev, spec)
		if err != nil {
			d.log.Error("reload: cannot replace listener; it keeps its old settings", "listener", name, "error", err)
			continue
		}
		d.retire(ch.r)
		ch.r.cfg, ch.r.lis = ch.next, l
		d.keepCerts(ch.r)
		if prev.Addr() == l.Addr() {
			d.log.Info("reload: listener replaced on its socket", "listener", name, "address", l.Addr(), "module", ch.next.Module, "changed", ch.keys)
		} else {
			d.log.Info("reload: listener moved", "listener", name, "from", prev.Addr(), "to", l.Addr(), "module", ch.next.Module, "changed", ch.keys)
		}
	}
	kept := d.listeners[:0]
	for _, r := range d.listeners {
		if !next[r.cfg.Name] {
			r.lis.Close()
			d.retire(r)
			d.log.Info("reload: listener removed; its connections finish", "listener", r.cfg.Name, "connections", r.lis.ActiveConnections())
			continue
		}
		kept = append(kept, r)
	}
	d.listeners = kept
	d.warnUnappliable(cfg)
	d.logWarnings(cfg)
	d.applyLogLevel(cfg)
	d.cfg.ShutdownTimeout = cfg.ShutdownTimeout
	d.cfg.DrainDelay = cfg.DrainDelay
	d.cfg.Listeners = cfg.Listeners
	d.log.Info("reload: done", "config", d.src.Name(), "listeners", len(d.listeners), "changed", len(changes))
	return nil
}

// logWarnings logs what cfg allows but is not safe (config.Warnings),
// as netd validate prints it.
func (d *Daemon) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		d.log.Warn("config: allowed but unsafe", "warning", w)
	}
}

// warnUnappliable names the settings a reload cannot change in a running
// process.
func (d *Daemon) warnUnappliable(cfg *config.Config) {
	check := func(name string, changed bool) {
		if changed {
			d.log.Warn("reload: setting changed but needs a restart or an upgrade (SIGUSR2) to apply", "setting", name)
		}
	}
	check("loops", cfg.Loops != d.cfg.Loops)
	check("max_connections", cfg.MaxConnections != d.cfg.MaxConnections)
	check("user", cfg.User != d.cfg.User)
	check("group", cfg.Group != d.cfg.Group)
	check("log.format", cfg.Log.Format != d.cfg.Log.Format)
	check("admin", !reflect.DeepEqual(cfg.Admin, d.cfg.Admin))
}

// applyLogLevel applies a changed log.level unless a flag or the
// environment set the level.
func (d *Daemon) applyLogLevel(cfg *config.Config) {
	if cfg.Log.Level == d.cfg.Log.Level {
		return
	}
	level, _, err := d.logging(cfg.Log.Level, "")
	if err != nil {
		d.log.Warn("reload: log.level not applied", "error", err)
		return
	}
	d.cfg.Log.Level = cfg.Log.Level
	if level != "" { // without Options.Logging, a file that drops log.level keeps the level in force
		d.log.SetLevel(hclog.LevelFromString(level))
	}
}

// logConfigError logs each problem of a config error on a line of its own.
func (d *Daemon) logConfigError(msg string, err error) {
	var errs config.Errors
	var one *config.Error
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			d.log.Error(msg, "problem", e.Error())
		}
	case errors.As(err, &one):
		d.log.Error(msg, "problem", one.Error())
	default:
		d.log.Error(msg, "config", d.src.Name(), "error", err)
	}
}
