package daemon

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// lookupUser returns the uid and primary gid of the user name.
func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return -1, -1, fmt.Errorf("user %q: %w", name, err)
	}
	if uid, err = parseID(u.Uid); err != nil {
		return -1, -1, fmt.Errorf("user %q: uid %w", name, err)
	}
	if gid, err = parseID(u.Gid); err != nil {
		return -1, -1, fmt.Errorf("user %q: primary gid %w", name, err)
	}
	return uid, gid, nil
}

// lookupGroup returns the gid of the group name.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", name, err)
	}
	gid, err := parseID(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q: gid %w", name, err)
	}
	return gid, nil
}

// parseID parses a numeric uid or gid. An id that does not parse is an
// error, never 0: read as 0 it would make netd "drop" to root.
func parseID(s string) (int, error) {
	id, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return -1, fmt.Errorf("%q is not a numeric id", s)
	}
	return int(id), nil
}

// ownerIDs resolves an admin socket's user and group to ids; -1 keeps
// the process's own.
func ownerIDs(userName, groupName string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if userName != "" {
		if uid, _, err = lookupUser(userName); err != nil {
			return -1, -1, fmt.Errorf("admin: %w", err)
		}
	}
	if groupName != "" {
		if gid, err = lookupGroup(groupName); err != nil {
			return -1, -1, fmt.Errorf("admin: %w", err)
		}
	}
	return uid, gid, nil
}

// dropPrivs is dropPrivileges; a test replaces it to watch what happens
// around the drop.
var dropPrivs = dropPrivileges

// dropPrivileges switches to userName and groupName for good, once every
// socket is bound (a port below 1024 needs root to bind, not to serve).
// With only a user, its primary group is used; a group without a user is
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
	uid, gid, err := lookupUser(userName)
	if err != nil {
		return err
	}
	if groupName != "" {
		if gid, err = lookupGroup(groupName); err != nil {
			return err
		}
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
