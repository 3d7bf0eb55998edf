package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/netd/netd/internal/admin"
	"github.com/netd/netd/internal/config"
	"github.com/netd/netd/internal/ids"
	"github.com/netd/netd/internal/systemd"
)

// daemonSource is what the admin endpoint reads: the daemon's listeners,
// with the counts of the ones a reload replaced by one with the same name
// and module added to their successor's, so that such a reload never
// resets a counter. A listener a reload removed, or gave another module,
// is not there: forgetEnded dropped it.
type daemonSource struct{ d *Daemon }

var _ admin.Source = daemonSource{}

// Listeners implements admin.Source. Any goroutine.
func (s daemonSource) Listeners() []admin.ListenerSnapshot {
	d := s.d
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	var out []admin.ListenerSnapshot
	for _, r := range d.listeners {
		out = append(out, admin.FromStats(r.cfg.Name, r.lis.Stats()))
	}
	// A retired listener whose last connection has closed counts no more:
	// fold it into the totals and let it go.
	kept := d.retired[:0]
	for _, r := range d.retired {
		snap := admin.FromStats(r.cfg.Name, r.lis.Stats())
		if snap.Active == 0 {
			id := idOf(r.cfg)
			d.totals[id] = d.totals[id].Add(snap)
			continue
		}
		out = append(out, snap)
		kept = append(kept, r)
	}
	clear(d.retired[len(kept):])
	d.retired = kept
	for id, t := range d.totals {
		t.Name = id.Listener
		out = append(out, t)
	}
	return out
}

// Ready implements admin.Source.
func (s daemonSource) Ready() bool { return s.d.ready.Load() }

// Draining implements admin.Source: true from the start of a stop,
// drain_delay included.
func (s daemonSource) Draining() bool { return s.d.draining() }

// Loops implements admin.Source.
func (s daemonSource) Loops() []admin.LoopSnapshot {
	stats := s.d.engine.LoopStats()
	out := make([]admin.LoopSnapshot, len(stats))
	for i, st := range stats {
		out[i] = admin.LoopSnapshot{ID: i, Events: st.Events, Busy: st.Busy, Connections: st.Connections}
	}
	return out
}

// bindAdmin binds the admin endpoint, when the config has one, or adopts
// the socket an upgrade's old process passed for it; nothing is served
// until serveAdmin. A taken admin address is a start-up error like a
// taken listener address.
func (d *Daemon) bindAdmin() error {
	a := d.cfg.Admin
	if a == nil || a.Address == "" {
		return nil
	}
	cfg := admin.Config{
		Network: "tcp",
		Address: a.Addr.Host,
		Pprof:   a.Pprof,
		Logger:  d.log.Named("admin"),
		Source:  daemonSource{d},
		Version: d.opts.Version,
		Commit:  d.opts.Commit,
		Metrics: d.metrics,
	}
	if a.Reload {
		cfg.Reload = d.reloadFromAdmin
	}
	if a.Addr.Scheme == "unix" {
		uid, gid, err := ids.Owner(a.User, a.Group)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		cfg.Network, cfg.Address, cfg.Mode, cfg.UID, cfg.GID = "unix", a.Addr.Path, a.Mode, uid, gid
	}
	d.adminKey = adminUpgradeKey(a)
	f, err := d.inherited(d.adminKey)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if f != nil {
		cfg.File, d.adminAdopted = f, true
		defer f.Close() // the server holds its own dup
	}
	srv, err := admin.New(cfg)
	if err != nil {
		return err
	}
	d.admin = srv
	return nil
}

// serveAdmin serves the bound admin endpoint, once privileges are dropped.
func (d *Daemon) serveAdmin() {
	if d.admin == nil {
		return
	}
	srv := d.admin
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Error("admin endpoint stopped", "error", err)
		}
	}()
}

// reloadFromAdmin is the admin endpoint's POST /-/reload.
func (d *Daemon) reloadFromAdmin() error {
	if d.draining() {
		return fmt.Errorf("shutting down: %w", admin.ErrReloadConflict)
	}
	d.log.Info("reload requested through the admin endpoint", "config", d.src.Name())
	return d.Reload()
}

// draining reports whether a stop has begun (drain_delay included).
func (d *Daemon) draining() bool { return d.stopping.Load() || d.engine.Draining() }

func (d *Daemon) stopAdmin() {
	if d.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.admin.Shutdown(ctx)
}

// configHash identifies the config's bytes in netd_config_info.
func (d *Daemon) configHash() string {
	if d.src.Embedded() {
		return admin.HashConfig(defaultConfig)
	}
	b, err := os.ReadFile(d.src.Path)
	if err != nil {
		return ""
	}
	return admin.HashConfig(b)
}

// systemdSockets takes the sockets systemd passed (socket activation),
// once, before anything else opens a descriptor.
func (d *Daemon) systemdSockets() error {
	files, err := systemd.Listeners()
	if err != nil {
		return fmt.Errorf("socket activation: %w", err)
	}
	d.activated = files
	return nil
}

// activatedFile returns the socket systemd passed for fd://NAME.
func (d *Daemon) activatedFile(l *config.Listener) (*os.File, error) {
	files := d.activated[l.Addr.Path]
	switch len(files) {
	case 0:
		names := make([]string, 0, len(d.activated))
		for n := range d.activated {
			names = append(names, n)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("listener %q: %s: no socket was passed by systemd (socket activation: LISTEN_FDS is not set for this process)", l.Name, l.Addr.String())
		}
		return nil, fmt.Errorf("listener %q: %s: systemd passed no socket named %q (it passed %v)", l.Name, l.Addr.String(), l.Addr.Path, names)
	case 1:
		return files[0], nil
	default:
		return nil, fmt.Errorf("listener %q: %s: systemd passed %d sockets named %q; give each its own FileDescriptorName and its own listener", l.Name, l.Addr.String(), len(files), l.Addr.Path)
	}
}

// closeActivated closes every socket systemd passed: the listeners hold
// dups of the ones they took.
func (d *Daemon) closeActivated() {
	for _, files := range d.activated {
		for _, f := range files {
			f.Close()
		}
	}
	d.activated = nil
}

// notify tells systemd (Type=notify) about a state change; without
// NOTIFY_SOCKET it does nothing.
func (d *Daemon) notify(send func() (bool, error)) {
	if _, err := send(); err != nil {
		d.log.Warn("systemd notify failed", "error", err)
	}
}
