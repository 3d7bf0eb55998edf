package exec

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// credential resolves the user and group options to the ids a child runs
// as. A name is looked up in the user database; a decimal number is an id
// as it is. Without group the child gets the user's primary group. Its
// supplementary groups are just that group, so that it keeps none of
// netd's. An id that does not parse is an error, never 0: a typo must not
// run the child as root. key names the option at fault.
func credential(userName, groupName string) (cred *syscall.Credential, key string, err error) {
	if userName == "" {
		if groupName != "" {
			return nil, "group", fmt.Errorf("group needs user: alone it would leave the child with netd's uid")
		}
		return nil, "", nil
	}
	uid, gid := uint32(0), uint32(0)
	primary := false
	if id, ok := parseID(userName); ok {
		uid = id
		if u, err := user.LookupId(userName); err == nil {
			if gid, err = parseIDString(u.Gid); err != nil {
				return nil, "user", fmt.Errorf("user %s: primary group %q: %w", userName, u.Gid, err)
			}
			primary = true
		}
	} else {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, "user", fmt.Errorf("unknown user %q: %w", userName, err)
		}
		if uid, err = parseIDString(u.Uid); err != nil {
			return nil, "user", fmt.Errorf("user %q: uid %q: %w", userName, u.Uid, err)
		}
		if gid, err = parseIDString(u.Gid); err != nil {
			return nil, "user", fmt.Errorf("user %q: primary group %q: %w", userName, u.Gid, err)
		}
		primary = true
	}
	switch id, ok := parseID(groupName); {
	case groupName == "" && !primary:
		return nil, "user", fmt.Errorf("user %s is not in the user database: give group too", userName)
	case groupName == "":
	case ok:
		gid = id
	default:
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, "group", fmt.Errorf("unknown group %q: %w", groupName, err)
		}
		if gid, err = parseIDString(g.Gid); err != nil {
			return nil, "group", fmt.Errorf("group %q: gid %q: %w", groupName, g.Gid, err)
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{gid}}, "", nil
}

// parseID reports whether s is a decimal id, and its value.
func parseID(s string) (uint32, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	id, err := parseIDString(s)
	return id, err == nil
}

// parseIDString parses a uid or gid; (uint32)(-1) is not an id.
func parseIDString(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if n == 1<<32-1 {
		return 0, fmt.Errorf("%s is not a valid id", s)
	}
	return uint32(n), nil
}
