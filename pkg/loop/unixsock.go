package loop

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// DefaultSocketMode is the permissions of a unix listener's socket file
// when its spec sets none: netd's user and group may connect, others may
// not (connecting to a unix socket needs write permission on its file).
const DefaultSocketMode os.FileMode = 0o660

// socketFile is the file a unix listener made (or adopted), as it was
// then: the listener removes that file on stop, and no other one that a
// new process or an operator may have put at the same path since.
type socketFile struct {
	path     string // "" when the listener owns no file
	dev, ino uint64
	mode     os.FileMode // its permissions when it was found
}

// bindUnix creates a listening unix socket at path whose file has mode
// (0: DefaultSocketMode) and the owner user and group ("" keeps netd's).
//
// The file must never exist with wider permissions than asked, not even
// for a moment: bind(2) creates it with 0777 less the umask, and a chmod
// after it would leave a window. Linux gives the file the mode of the
// socket's own inode less the umask, so an fchmod of the socket before
// bind makes the file born with at most mode (the umask can only take
// bits away). Where the umask took some, or a user or group is to be set
// (the file is then born with the owner's bits only), the file gets its
// owner and then its exact mode through a descriptor of the very file,
// before listen: no step ever widens what the file allows beyond mode.
func bindUnix(path string, mode os.FileMode, userName, groupName string) (fd int, file socketFile, err error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	uid, gid, err := lookupOwner(userName, groupName)
	if err != nil {
		return -1, socketFile{}, err
	}
	if err := clearStaleUnixSocket(path); err != nil {
		return -1, socketFile{}, unixPermission(err, path, "remove the stale socket file")
	}
	fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, socketFile{}, fmt.Errorf("socket: %w", err)
	}
	fail := func(err error) (int, socketFile, error) {
		_ = unix.Close(fd)
		return -1, socketFile{}, err
	}
	owned := uid >= 0 || gid >= 0
	born := mode
	if owned {
		born &= 0o700
	}
	if err := unix.Fchmod(fd, uint32(born)); err != nil {
		return fail(fmt.Errorf("bind unix %s: fchmod the socket: %w", path, err))
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = fmt.Errorf("directory %s does not exist", filepath.Dir(path))
		}
		return fail(unixPermission(fmt.Errorf("bind unix %s: %w", path, err), path, "create the socket file"))
	}
	file, err = statSocketFile(path)
	if err != nil {
		return fail(err)
	}
	if owned || file.mode != mode {
		if err := file.setOwnerMode(mode, uid, gid); err != nil {
			_ = file.remove()
			return fail(err)
		}
	}
	if err := unix.Listen(fd, listenBacklog()); err != nil {
		_ = file.remove()
		return fail(fmt.Errorf("listen unix %s: %w", path, err))
	}
	return fd, file, nil
}

// statSocketFile identifies the socket file at path, to be removed on
// stop: one the listener made, or one it took over (an upgrade, a
// reload).
func statSocketFile(path string) (socketFile, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return socketFile{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return socketFile{}, fmt.Errorf("%s is not a socket", path)
	}
	return socketFile{path: path, dev: st.Dev, ino: st.Ino, mode: os.FileMode(st.Mode) & os.ModePerm}, nil
}

// setOwnerMode gives the socket file its owner (uid, gid; -1 keeps
// either) and then mode. It works on a descriptor of the file, checked to
// be f's, so that a path swapped meanwhile (for a symlink to another file,
// say) cannot turn it onto something else.
func (f socketFile) setOwnerMode(mode os.FileMode, uid, gid int) error {
	pfd, err := unix.Open(f.path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", f.path, err)
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return fmt.Errorf("%s was replaced by another file", f.path)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(pfd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return unixPermission(fmt.Errorf("chown %s to %s: %w", f.path, ownerString(uid, gid), err), f.path, chownWhat)
		}
	}
	// An O_PATH descriptor takes no fchmod; its /proc link does, without
	// following a symlink at f.path.
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", pfd), uint32(mode)); err != nil {
		return unixPermission(fmt.Errorf("chmod %s to %04o: %w", f.path, mode, err), f.path, "change the socket file's mode")
	}
	return nil
}

// remove removes the socket file if it is still the one the listener made
// or took over. It reports why it could not; a file that is gone or was
// replaced is no error.
func (f socketFile) remove() error {
	if f.path == "" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(f.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", f.path, err)
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return nil // another process's socket now: not ours to remove
	}
	if err := unix.Unlink(f.path); err != nil && !errors.Is(err, unix.ENOENT) {
		return unixPermission(fmt.Errorf("remove socket file %s: %w", f.path, err), f.path, "remove the socket file")
	}
	return nil
}

// unixPermission adds to err, when it is a permission error, what an
// operator needs to know: after a privilege drop netd no longer runs as
// the user that made the socket directory.
func unixPermission(err error, path, what string) error {
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	dir := filepath.Dir(path)
	who := fmt.Sprintf("uid %d, gid %d", os.Geteuid(), os.Getegid())
	if u, uerr := user.LookupId(strconv.Itoa(os.Geteuid())); uerr == nil {
		who = fmt.Sprintf("user %s (%s)", u.Username, who)
	}
	if what == chownWhat {
		return fmt.Errorf("%w: netd runs as %s and may not %s (only root may give a file away; netd drops privileges after binding at start)", err, who, what)
	}
	return fmt.Errorf("%w: netd runs as %s and may not %s in directory %s; make the directory writable by that user", err, who, what, dir)
}

const chownWhat = "change the socket file's owner"

// lookupOwner resolves a socket file's user and group, each a name or a
// numeric id; "" is -1, which keeps netd's.
func lookupOwner(userName, groupName string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if userName != "" {
		if uid, err = lookupID(userName, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		}); err != nil {
			return -1, -1, fmt.Errorf("socket user %q: %w", userName, err)
		}
	}
	if groupName != "" {
		if gid, err = lookupID(groupName, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		}); err != nil {
			return -1, -1, fmt.Errorf("socket group %q: %w", groupName, err)
		}
	}
	return uid, gid, nil
}

// lookupID takes a numeric id as it is and looks up a name; an id that
// does not parse is an error, never a fallback to 0 (root).
func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		return int(n), nil
	}
	id, err := byName(s)
	if err != nil {
		return -1, err
	}
	n, err := strconv.ParseUint(id, 10, 31)
	if err != nil {
		return -1, fmt.Errorf("id %q is not a number", id)
	}
	return int(n), nil
}

func ownerString(uid, gid int) string {
	s := func(id int) string {
		if id < 0 {
			return "(unchanged)"
		}
		return strconv.Itoa(id)
	}
	return s(uid) + ":" + s(gid)
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
	if f.path == "" {
		return fmt.Errorf("listener %q: socket file %s: not made by this netd, so its mode and owner stay", l.spec.Name, l.spec.Address)
	}
	mode := next.SocketMode
	if mode == 0 {
		mode = DefaultSocketMode
	}
	uid, gid, err := lookupOwner(next.SocketUser, next.SocketGroup)
	if err != nil {
		return fmt.Errorf("listener %q: %w", l.spec.Name, err)
	}
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	if err := f.setOwnerMode(mode, uid, gid); err != nil {
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
