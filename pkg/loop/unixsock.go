package loop

import (
	"fmt"
	"os"

	"github.com/netd/netd/internal/ids"
	"github.com/netd/netd/internal/unixsock"
)

// DefaultSocketMode is the permissions of a unix listener's socket file
// when its spec sets none: netd's user and group may connect, others may
// not (connecting to a unix socket needs write permission on its file).
const DefaultSocketMode os.FileMode = 0o660

// bindUnix creates a listening unix socket at path (unixsock.Listen)
// whose file has mode (0: DefaultSocketMode) and the owner user and
// group, each a name or an id ("" keeps netd's).
func bindUnix(path string, mode os.FileMode, userName, groupName string) (int, unixsock.File, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	uid, gid, err := socketOwner(userName, groupName)
	if err != nil {
		return -1, unixsock.File{}, err
	}
	return unixsock.Listen(path, mode, uid, gid)
}

// socketOwner resolves a socket file's user and group; "" is -1, which
// keeps netd's.
func socketOwner(userName, groupName string) (uid, gid int, err error) {
	if uid, gid, err = ids.Owner(userName, groupName); err != nil {
		return -1, -1, fmt.Errorf("socket file owner: %w", err)
	}
	return uid, gid, nil
}

// handSocketFile gives the socket file that l hands over to a successor
// on its socket the successor's mode and owner, where they differ. A user
// or group the successor leaves out is netd's own.
func (l *Listener) handSocketFile(next ListenerSpec) error {
	if next.Network != "unix" || next.SocketMode == l.spec.SocketMode &&
		next.SocketUser == l.spec.SocketUser && next.SocketGroup == l.spec.SocketGroup {
		return nil
	}
	l.engine.mu.Lock()
	f := l.sock
	l.engine.mu.Unlock()
	if f.Path == "" {
		return fmt.Errorf("listener %q: socket file %s: not made by this netd, so its mode and owner stay", l.spec.Name, l.spec.Address)
	}
	mode := next.SocketMode
	if mode == 0 {
		mode = DefaultSocketMode
	}
	uid, gid, err := socketOwner(next.SocketUser, next.SocketGroup)
	if err != nil {
		return fmt.Errorf("listener %q: %w", l.spec.Name, err)
	}
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	if err := f.SetOwnerMode(mode, uid, gid); err != nil {
		return fmt.Errorf("listener %q: %w", l.spec.Name, err)
	}
	return nil
}

// BindListener binds spec's socket as Listen would, without serving it,
// and returns it as a file for ListenerSpec.File: a reload binds every
// new address before it changes anything. A unix socket file made so
// belongs to the listener that takes the file with OwnSocketFile.
func BindListener(spec ListenerSpec) (*os.File, error) {
	if spec.Network != "unix" {
		return Bind(spec.Network, spec.Address)
	}
	fd, _, err := bindUnix(spec.Address, spec.SocketMode, spec.SocketUser, spec.SocketGroup)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "unix://"+spec.Address), nil
}
