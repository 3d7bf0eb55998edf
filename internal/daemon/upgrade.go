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
// the sockets over as plain files, keyed by listener name and address, so
// that the new process adopts exactly the sockets whose listener it still
// has, whatever their network.

// upgradeTimeout bounds how long the old process waits for the new one to
// become ready before it gives up the upgrade and carries on.
const upgradeTimeout = 30 * time.Second

func upgradeKey(l *config.Listener) string {
	return "netd-listener:" + l.Name + "|" + l.Addr.String()
}

// newUpgrader prepares upgrades; in a process started by an upgrade it
// holds the sockets the old process passed.
func newUpgrader() (*tableflip.Upgrader, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade support: %w", err)
	}
	return upg, nil
}

// inheritedFile returns the socket an old process passed for l, if any.
func (d *Daemon) inheritedFile(l *config.Listener) (*os.File, error) {
	if d.upg == nil || !d.upg.HasParent() {
		return nil, nil
	}
	f, err := d.upg.Fds.File(upgradeKey(l))
	if err != nil {
		return nil, fmt.Errorf("listener %q: inherited socket: %w", l.Name, err)
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
	exe, _ := os.Executable()
	d.log.Info("SIGUSR2: upgrading: starting the new binary", "path", exe)
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
}
