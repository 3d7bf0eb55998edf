package exec

import (
	"fmt"
	"syscall"

	"github.com/netd/netd/internal/ids"
)

// credential resolves the user and group options (names or numeric ids,
// resolved by ids.Identity) to the ids a child runs as: without group,
// the user's primary group. Its supplementary groups are just that group, so
// that it keeps none of netd's. key names the option at fault.
func credential(userName, groupName string) (cred *syscall.Credential, key string, err error) {
	if userName == "" {
		if groupName != "" {
			return nil, "group", fmt.Errorf("group needs user: alone it would leave the child with netd's uid")
		}
		return nil, "", nil
	}
	uid, gid, key, err := ids.Identity(userName, groupName)
	if err != nil {
		return nil, key, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}, "", nil
}
