package exec

import (
	"math"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// inheritedOnce makes the sweep of inheritedCloseOnExec one per process.
var inheritedOnce sync.Once

// inheritedCloseOnExec marks every descriptor of netd close-on-exec, so
// that a child gets only its 0, 1 and 2. What Go and netd open is
// close-on-exec already (sockets, epoll, eventfds, pidfds, log files, and
// the sockets systemd or an upgrade passed, which their code marks), but
// a descriptor netd inherited from whatever started it (a careless
// supervisor's pipe, a shell's stray redirection) is not, and would reach
// every child. Nothing netd runs relies on inheriting one: an upgrade
// hands its sockets over explicitly (ExtraFiles). It runs once, before
// the first child starts.
func inheritedCloseOnExec() {
	inheritedOnce.Do(func() {
		if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
			return
		}
		// Before Linux 5.11: one by one.
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, ent := range ents {
			if fd, err := strconv.Atoi(ent.Name()); err == nil && fd > 2 {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
			}
		}
	})
}
