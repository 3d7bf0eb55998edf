package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/cloudflare/tableflip"

	"github.com/netd/netd/internal/config"
)

// Upgrades (SIGUSR2) use cloudflare/tableflip: it starts the binary at
// netd's own path with the listening sockets passed along, waits until the
// new process says it is ready, and then tells this one to go; meanwhile
// both accept on the same sockets, so no connect is refused. netd hands
// the sockets over as plain files, keyed by listener name and address (and
// the admin socket by its address), so that the new process adopts exactly
// the sockets it still has a use for, whatever their network. A process
// that dropped privileges starts its successor unprivileged: that one
// adopts every socket, binds none, and finds nothing to drop.

// upgradeTimeout bounds how long the old process waits for the new one to
// become ready before it gives up the upgrade and carries on.
const upgradeTimeout = 30 * time.Second

func upgradeKey(l *config.Listener) string {
	return "netd-listener:" + l.Name + "|" + l.Addr.String()
}

func adminUpgradeKey(a *config.Admin) string {
	return "netd-admin:" + a.Addr.String()
}

// newUpgrader prepares upgrades; in a process started by an upgrade it
// holds the sockets the old process passed.
//
// tableflip starts os.Args[0], looked up in PATH when it has no slash, and
// has no option to name another binary: started as "netd" from PATH (or
// as a relative path), an upgrade would run whatever PATH or the working
// directory gives then. So the binary this process runs is resolved now,
// from /proc/self/exe, and put in os.Args[0] for tableflip to start.
func (d *Daemon) newUpgrader() (*tableflip.Upgrader, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("upgrade support: cannot tell which binary runs: %w", err)
	}
	d.exe = exe
	os.Args[0] = exe
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade support: %w", err)
	}
	return upg, nil
}

// inheritedFile returns the socket an old process passed for l, if any.
func (d *Daemon) inheritedFile(l *config.Listener) (*os.File, error) {
	f, err := d.inherited(upgradeKey(l))
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.Name, err)
	}
	return f, nil
}

// inherited returns the socket an old process passed under key, if any.
func (d *Daemon) inherited(key string) (*os.File, error) {
	if d.upg == nil || !d.upg.HasParent() {
		return nil, nil
	}
	f, err := d.upg.Fds.File(key)
	if err != nil {
		return nil, fmt.Errorf("inherited socket: %w", err)
	}
	return f, nil
}

// upgrade starts the new binary with every listening socket. It returns
// once the new process is ready (then upg.Exit closes and this process
// drains) or the upgrade failed (and this process serves on).
func (d *Daemon) upgrade() {
	d.reloadMu.Lock()
	for _, r := range d.listeners {
		f, err := r.lis.File()
		if err == nil {
			err = d.upg.Fds.AddFile(upgradeKey(&r.cfg), f)
			f.Close()
		}
		if err != nil {
			d.reloadMu.Unlock()
			d.log.Error("upgrade failed: cannot pass a socket; still serving", "listener", r.cfg.Name, "error", err)
			return
		}
	}
	d.reloadMu.Unlock()
	if d.admin != nil {
		f, err := d.admin.File()
		if err == nil {
			err = d.upg.Fds.AddFile(d.adminKey, f)
			f.Close()
		}
		if err != nil {
			d.log.Error("upgrade failed: cannot pass the admin socket; still serving", "error", err)
			return
		}
	}
	d.log.Info("SIGUSR2: upgrading: starting the new binary", "path", d.exe)
	if err := d.upg.Upgrade(); err != nil {
		d.log.Error("upgrade failed; still serving", "error", err)
		return
	}
	d.log.Info("upgrade: the new process is ready; draining this one")
}

// handOver leaves the sockets to the new process once it is ready: unix
// socket files stay in place, and the admin endpoint stops here, so that
// every /readyz from then on reaches the new process (both share the
// socket; this one, draining, would answer 503).
func (d *Daemon) handOver() {
	d.disownSockets()
	d.stopAdmin()
}

// disownSockets leaves unix socket files in place for the new process.
func (d *Daemon) disownSockets() {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	for _, r := range d.listeners {
		r.lis.Disown()
	}
	if d.admin != nil {
		d.admin.Disown()
	}
}
