package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// socketFile is the admin endpoint's unix socket file: Shutdown removes it
// unless an upgrade took it over or another file has replaced it.
type socketFile struct {
	path     string
	info     fs.FileInfo // of the file as it was made or adopted
	disowned atomic.Bool
}

// remove deletes the socket file if it is still the one this server made.
func (f *socketFile) remove() {
	if f.disowned.Load() || f.info == nil {
		return
	}
	if now, err := os.Lstat(f.path); err == nil && os.SameFile(now, f.info) {
		_ = os.Remove(f.path)
	}
}

// listenUnix binds cfg.Address as a unix socket whose file has cfg.Mode and
// cfg.UID:cfg.GID from the moment it appears: the socket is bound inside a
// fresh directory only the process can enter (0700, next to the target, so
// that the rename below stays within one file system), given its mode and
// owner there, made to listen, and only then renamed into place. No umask
// or window between bind and chmod ever exposes it wider.
func listenUnix(cfg Config) (net.Listener, *socketFile, error) {
	path := cfg.Address
	if path == "" || !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("unix socket path %q is not absolute", path)
	}
	if cfg.Mode == 0 {
		return nil, nil, fmt.Errorf("unix socket %s: no mode", path)
	}
	if cfg.File != nil {
		return adoptUnix(cfg)
	}
	if err := clearStale(path); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("unix socket %s: directory %s does not exist (create it, not world-writable: install -d -m 0755 %[2]s)", path, filepath.Dir(path))
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".netd-admin-")
	if err != nil {
		return nil, nil, fmt.Errorf("unix socket %s: private directory: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	// The file is renamed away from tmp: Close must not unlink by name.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, *socketFile, error) {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, cfg.Mode); err != nil {
		return fail(err)
	}
	if cfg.UID != -1 || cfg.GID != -1 {
		if err := os.Lchown(tmp, cfg.UID, cfg.GID); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, &socketFile{path: path, info: info}, nil
}

// adoptUnix serves the socket an upgrade handed over; its file stays as
// the old process made it.
func adoptUnix(cfg Config) (net.Listener, *socketFile, error) {
	ln, err := net.FileListener(cfg.File)
	if err != nil {
		return nil, nil, fmt.Errorf("unix socket %s: inherited socket: %w", cfg.Address, err)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("unix socket %s: inherited socket is %s, not unix", cfg.Address, ln.Addr().Network())
	}
	ul.SetUnlinkOnClose(false)
	info, _ := os.Lstat(cfg.Address) // nil: nothing to remove at Shutdown
	return ul, &socketFile{path: cfg.Address, info: info}, nil
}

// clearStale removes a socket file nobody accepts on (left by a crash),
// and refuses a live one or a file that is not a socket.
func clearStale(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unix socket %s: %w", path, err)
	}
	if info.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("unix socket %s: a file that is not a socket is in the way", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("unix socket %s: %w: another process accepts on it", path, syscall.EADDRINUSE)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unix socket %s: removing a stale socket: %w", path, err)
	}
	return nil
}
