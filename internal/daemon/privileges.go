package daemon

import (
	"fmt"
	"os"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/netd/netd/internal/ids"
)

// dropPrivs is dropPrivileges; a test replaces it to watch what happens
// around the drop.
var dropPrivs = dropPrivileges

// dropPrivileges switches to userName and groupName (names or numeric
// ids, resolved by ids.Identity: without a group, the user's primary
// one) for good, once every socket is bound (a port below 1024 needs
// root to bind, not to serve). A group without a user is
// refused (config validation reports it first), since it would leave
// netd root. A process already running as that user and group, as one
// started by an upgrade from a process that dropped, has nothing to drop
// and says so. Go applies setuid and setgid to every thread.
func dropPrivileges(userName, groupName string, log hclog.Logger) error {
	if userName == "" && groupName == "" {
		return nil
	}
	if userName == "" {
		return fmt.Errorf("group %q without user: netd would go on running as root; set user too", groupName)
	}
	uid, gid, _, err := ids.Identity(userName, groupName)
	if err != nil {
		return err
	}
	if os.Getuid() == uid && os.Geteuid() == uid && os.Getgid() == gid && os.Getegid() == gid {
		log.Info("already running as the configured user and group: no privilege drop needed", "user", userName, "uid", uid, "gid", gid)
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("drop privileges to user %q (uid %d, gid %d): running as uid %d, not root: %w", userName, uid, gid, os.Geteuid(), syscall.EPERM)
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("drop privileges: setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("drop privileges: setuid %d: %w", uid, err)
	}
	log.Info("dropped privileges", "user", userName, "uid", uid, "gid", gid)
	return nil
}
