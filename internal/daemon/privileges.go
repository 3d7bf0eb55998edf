package daemon

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches to user and group for good, once every listener
// is bound (a port below 1024 needs root to bind, not to serve). With only
// a user, its primary group is used. Go applies setuid and setgid to every
// thread of the process.
func dropPrivileges(userName, groupName string) error {
	if userName == "" && groupName == "" {
		return nil
	}
	uid, gid := -1, -1
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return fmt.Errorf("user %q: %w", userName, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return fmt.Errorf("group %q: %w", groupName, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("drop privileges: setgid %d: %w", gid, err)
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("drop privileges: setuid %d: %w", uid, err)
		}
	}
	return nil
}
