// Package ids resolves the users and groups netd's configuration names
// (netd's own privilege drop, socket file owners, exec's children) to
// numeric ids, in one way for all of them.
//
// A value is a name, looked up in the user or group database, or a
// decimal id, taken as it is. An id is never guessed: a value that is
// neither a valid id nor a known name is an error naming it, never 0,
// since 0 would mean root.
package ids

import (
	"errors"
	"fmt"
	"math"
	"os/user"
	"strconv"
)

// Parse parses a decimal uid or gid. (uint32)(-1) is no id (the kernel
// reads it as "unchanged"), nor is a number that does not fit an int.
func Parse(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 || n > math.MaxInt {
		return -1, fmt.Errorf("%q is not a numeric id", s)
	}
	return int(n), nil
}

// User resolves s, a user name or a numeric uid, to its uid and primary
// gid. A numeric uid the user database does not know has no primary
// group: gid is then -1 and known false, and the caller decides whether
// it needs one.
func User(s string) (uid, gid int, known bool, err error) {
	var u *user.User
	if uid, err = Parse(s); err == nil {
		if u, err = user.LookupId(s); err != nil {
			return uid, -1, false, nil
		}
	} else if u, err = user.Lookup(s); err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return -1, -1, false, fmt.Errorf("unknown user %q", s)
		}
		return -1, -1, false, fmt.Errorf("user %q: %w", s, err)
	}
	if uid, err = Parse(u.Uid); err != nil {
		return -1, -1, false, fmt.Errorf("user %q: uid %w", s, err)
	}
	if gid, err = Parse(u.Gid); err != nil {
		return -1, -1, false, fmt.Errorf("user %q: primary gid %w", s, err)
	}
	return uid, gid, true, nil
}

// Group resolves s, a group name or a numeric gid, to its gid.
func Group(s string) (int, error) {
	if gid, err := Parse(s); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			return -1, fmt.Errorf("unknown group %q", s)
		}
		return -1, fmt.Errorf("group %q: %w", s, err)
	}
	gid, err := Parse(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q: gid %w", s, err)
	}
	return gid, nil
}

// Identity resolves the identity a process takes: userName, and
// groupName or else the user's primary group (so a uid the user database
// does not know needs groupName). which names the value at fault,
// "user" or "group".
func Identity(userName, groupName string) (uid, gid int, which string, err error) {
	uid, gid, known, err := User(userName)
	if err != nil {
		return -1, -1, "user", err
	}
	switch {
	case groupName != "":
		if gid, err = Group(groupName); err != nil {
			return -1, -1, "group", err
		}
	case !known:
		return -1, -1, "user", fmt.Errorf("user %s is not in the user database: give group too", userName)
	}
	return uid, gid, "", nil
}

// Owner resolves a file's owner: user and group, each a name, an id or
// "" for -1 (keep the process's own, as chown(2) reads -1).
func Owner(userName, groupName string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if userName != "" {
		if uid, _, _, err = User(userName); err != nil {
			return -1, -1, err
		}
	}
	if groupName != "" {
		if gid, err = Group(groupName); err != nil {
			return -1, -1, err
		}
	}
	return uid, gid, nil
}
