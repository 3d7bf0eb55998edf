// Package systemd speaks netd's side of two systemd protocols: readiness
// notification (sd_notify(3), for Type=notify and Type=notify-reload
// units) and socket activation (sd_listen_fds(3), for fd://NAME
// listeners). Outside systemd both are no-ops.
package systemd

import (
	"os"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends state, newline-separated VAR=value assignments, to the
// socket named by $NOTIFY_SOCKET: a path, or an abstract socket when it
// starts with '@'. sent is false, with a nil error, when NOTIFY_SOCKET is
// unset: the process was not started by systemd with Type=notify (or
// NotifyAccess=none). NOTIFY_SOCKET stays set, so that the process that
// replaces netd on an upgrade can notify too.
func Notify(state string) (sent bool, err error) {
	return daemon.SdNotify(false, state)
}

// Ready tells systemd that start-up, or a reload, is complete.
func Ready() (bool, error) { return Notify(daemon.SdNotifyReady) }

// ReadyAsMain tells systemd that start-up is complete and that the calling
// process is now the service's main process. The process that takes over
// on an upgrade (a child of the old main process) sends it; systemd
// accepts it only with NotifyAccess=all in the unit.
func ReadyAsMain() (bool, error) {
	return Notify(daemon.SdNotifyReady + "\nMAINPID=" + strconv.Itoa(os.Getpid()))
}

// Reloading tells systemd that a reload has begun; Ready must follow when
// it is over, whether it succeeded or not. It carries MONOTONIC_USEC, the
// time on CLOCK_MONOTONIC, which systemd 253 and later require with
// Type=notify-reload to match the reload to the signal that asked for it.
func Reloading() (bool, error) {
	return Notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping tells systemd that shutdown has begun. The old process of an
// upgrade must not send it once its successor is the main process: with
// NotifyAccess=all systemd would take the whole service for stopping.
func Stopping() (bool, error) { return Notify(daemon.SdNotifyStopping) }

// Status sets the one-line status `systemctl status` shows. Newlines in
// status would start new assignments; they become spaces.
func Status(status string) (bool, error) {
	return Notify("STATUS=" + strings.ReplaceAll(status, "\n", " "))
}
