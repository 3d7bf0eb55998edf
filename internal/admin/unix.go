package admin

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/netd/netd/internal/unixsock"
)

// socketFile is the admin endpoint's unix socket file: Shutdown removes it
// unless an upgrade took it over or another file has replaced it.
type socketFile struct {
	path     string
	file     unixsock.File // as it was made or adopted
	disowned atomic.Bool
}

// remove deletes the socket file if it is still the one this server made.
func (f *socketFile) remove() {
	if !f.disowned.Load() {
		_ = f.file.Remove()
	}
}

// listenUnix binds cfg.Address as a unix socket whose file is never wider
// than cfg.Mode and has cfg.Mode and cfg.UID:cfg.GID once it listens
// (unixsock.Listen, as the loop's unix listeners).
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
	fd, file, err := unixsock.Listen(path, cfg.Mode, cfg.UID, cfg.GID)
	if err != nil {
		return nil, nil, fmt.Errorf("unix socket: %w", err) // err names path
	}
	f := os.NewFile(uintptr(fd), "unix://"+path)
	defer f.Close() // the listener holds its own dup
	ln, err := net.FileListener(f)
	if err != nil {
		_ = file.Remove()
		return nil, nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	// The file is removed at Shutdown, only if still this one: Close must
	// not unlink by name.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, &socketFile{path: path, file: file}, nil
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
	file, _ := unixsock.Stat(cfg.Address) // no file: nothing to remove at Shutdown
	return ul, &socketFile{path: cfg.Address, file: file}, nil
}
