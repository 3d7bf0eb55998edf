// Package unixsock makes listening unix sockets whose files are never,
// not even for a moment, wider than the mode asked for, and removes such
// a file later only if it is still the one made. The loop's unix
// listeners and the admin endpoint both make their sockets here.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// File is a socket file as it was when made or found: Remove removes
// that file, and no other one that a new process or an operator may have
// put at the same path since. The zero File is no file.
type File struct {
	Path     string // "" for no file
	dev, ino uint64
	mode     os.FileMode // its permissions when it was found
}

// Listen creates a non-blocking, close-on-exec unix socket listening at
// path whose file has exactly mode and the owner uid, gid (-1 keeps the
// process's own). A socket file nobody accepts on is removed first; a
// live one, or a file that is not a socket, is refused.
//
// The file must never exist with wider permissions than mode: bind(2)
// creates it with 0777 less the umask, and a chmod after it would leave
// a window. Linux gives the file the mode of the socket's own inode less
// the umask, so an fchmod of the socket before bind makes the file born
// with at most mode (the umask can only take bits away). Where the umask
// took some, or an owner is to be set (the file is then born with the
// owner's bits only, its owner being the process until then), the file
// gets its owner and then its exact mode through a descriptor of the
// very file, before listen: no step ever widens what the file allows
// beyond mode. Binding at the path itself, not in a temporary directory
// renamed into place, keeps the longest usable path the kernel's.
func Listen(path string, mode os.FileMode, uid, gid int) (fd int, file File, err error) {
	if err := ClearStale(path); err != nil {
		return -1, File{}, permission(err, path, "remove the stale socket file")
	}
	fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, File{}, fmt.Errorf("socket: %w", err)
	}
	fail := func(err error) (int, File, error) {
		_ = unix.Close(fd)
		return -1, File{}, err
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
			err = fmt.Errorf("directory %s does not exist (create it, not world-writable: install -d -m 0755 %[1]s)", filepath.Dir(path))
		}
		return fail(permission(fmt.Errorf("bind unix %s: %w", path, err), path, "create the socket file"))
	}
	file, err = Stat(path)
	if err != nil {
		return fail(err)
	}
	if owned || file.mode != mode {
		if err := file.SetOwnerMode(mode, uid, gid); err != nil {
			_ = file.Remove()
			return fail(err)
		}
		file.mode = mode
	}
	if err := unix.Listen(fd, Backlog()); err != nil {
		_ = file.Remove()
		return fail(fmt.Errorf("listen unix %s: %w", path, err))
	}
	return fd, file, nil
}

// Stat identifies the socket file at path, to be removed later: one the
// process made, or one it took over (an upgrade, a reload).
func Stat(path string) (File, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return File{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return File{}, fmt.Errorf("%s is not a socket", path)
	}
	return File{Path: path, dev: st.Dev, ino: st.Ino, mode: os.FileMode(st.Mode) & os.ModePerm}, nil
}

// SetOwnerMode gives the socket file its owner (uid, gid; -1 keeps
// either) and then mode. It works on a descriptor of the file, checked to
// be f's, so that a path swapped meanwhile (for a symlink to another file,
// say) cannot turn it onto something else.
func (f File) SetOwnerMode(mode os.FileMode, uid, gid int) error {
	pfd, err := unix.Open(f.Path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", f.Path, err)
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return fmt.Errorf("%s was replaced by another file", f.Path)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(pfd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return permission(fmt.Errorf("chown %s to %s: %w", f.Path, ownerString(uid, gid), err), f.Path, chownWhat)
		}
	}
	// An O_PATH descriptor takes no fchmod; its /proc link does, without
	// following a symlink at f.Path.
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", pfd), uint32(mode)); err != nil {
		return permission(fmt.Errorf("chmod %s to %04o: %w", f.Path, mode, err), f.Path, "change the socket file's mode")
	}
	return nil
}

// Remove removes the socket file if it is still f. It reports why it
// could not; a file that is gone or was replaced is no error.
func (f File) Remove() error {
	if f.Path == "" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(f.Path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", f.Path, err)
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return nil // another process's socket now: not ours to remove
	}
	if err := unix.Unlink(f.Path); err != nil && !errors.Is(err, unix.ENOENT) {
		return permission(fmt.Errorf("remove socket file %s: %w", f.Path, err), f.Path, "remove the socket file")
	}
	return nil
}

// ClearStale removes a socket file that no process accepts on (left by a
// crash), and refuses a path where one does, or where a file that is not
// a socket is: that file is not netd's to replace.
func ClearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("bind unix %s: %w by a running process", path, unix.EADDRINUSE)
	}
	if errors.Is(err, unix.ECONNREFUSED) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("probe existing socket %s: %w", path, err)
}

// permission adds to err, when it is a permission error, what an
// operator needs to know: after a privilege drop netd no longer runs as
// the user that made the socket directory.
func permission(err error, path, what string) error {
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	who := fmt.Sprintf("uid %d, gid %d", os.Geteuid(), os.Getegid())
	if u, uerr := user.LookupId(strconv.Itoa(os.Geteuid())); uerr == nil {
		who = fmt.Sprintf("user %s (%s)", u.Username, who)
	}
	if what == chownWhat {
		return fmt.Errorf("%w: netd runs as %s and may not %s (only root may give a file away; netd drops privileges after binding at start)", err, who, what)
	}
	return fmt.Errorf("%w: netd runs as %s and may not %s in directory %s; make the directory writable by that user", err, who, what, filepath.Dir(path))
}

const chownWhat = "change the socket file's owner"

func ownerString(uid, gid int) string {
	s := func(id int) string {
		if id < 0 {
			return "(unchanged)"
		}
		return strconv.Itoa(id)
	}
	return s(uid) + ":" + s(gid)
}

var (
	backlogOnce sync.Once
	backlog     = 4096
)

// Backlog is the listen backlog of every socket netd makes, unix or not:
// the kernel's somaxconn, so that a burst of clients waits in the
// kernel's queue and is never refused.
func Backlog() int {
	backlogOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			backlog = n
		}
	})
	return backlog
}
