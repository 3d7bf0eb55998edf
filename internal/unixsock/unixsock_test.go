package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// listen is Listen with the socket closed and its file removed at
// cleanup.
func listen(t *testing.T, path string, mode os.FileMode) File {
	t.Helper()
	fd, f, err := Listen(path, mode, -1, -1)
	if err != nil {
		t.Fatalf("Listen(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = unix.Close(fd); _ = f.Remove() })
	return f
}

// TestListenMode: the file has exactly the mode asked for whatever the
// umask, which stays as it was, and takes connections.
func TestListenMode(t *testing.T) {
	for _, tc := range []struct {
		mode  os.FileMode
		umask int
	}{{0o600, 0}, {0o660, 0o077}, {0o666, 0o022}} {
		old := unix.Umask(tc.umask)
		path := filepath.Join(t.TempDir(), "s")
		listen(t, path, tc.mode)
		if got := unix.Umask(old); got != tc.umask {
			t.Errorf("umask became %04o", got)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.mode {
			t.Errorf("mode %v under umask %04o, want socket %v", fi.Mode(), tc.umask, tc.mode)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	}
}

// TestListenRefuses: a live socket and a file that is not a socket are
// refused and left alone; a stale socket is replaced; a missing
// directory is named.
func TestListenRefuses(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{live, "address already in use by a running process"},
		{plain, "exists and is not a socket"},
		{filepath.Join(dir, "no", "s"), "directory " + filepath.Join(dir, "no") + " does not exist"},
	} {
		if fd, _, err := Listen(tc.path, 0o600, -1, -1); err == nil || !strings.Contains(err.Error(), tc.want) {
			if err == nil {
				unix.Close(fd)
			}
			t.Errorf("Listen(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Errorf("the live socket no longer answers: %v", err)
	} else {
		c.Close()
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Error("the regular file was replaced")
	}
	if _, _, err := Listen(live, 0o600, -1, -1); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a live socket's error is not EADDRINUSE: %v", err)
	}

	stale := filepath.Join(dir, "stale")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	listen(t, stale, 0o600)
}

// TestRemoveOnlyIfSame: Remove removes the file it made, not one that
// replaced it; Stat refuses what is not a socket; the zero File removes
// nothing.
func TestRemoveOnlyIfSame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	f := listen(t, path, 0o600)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "theirs" {
		t.Errorf("Remove removed a file it did not make: %q, %v", b, err)
	}
	if _, err := Stat(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Stat of a regular file: %v", err)
	}
	if err := f.SetOwnerMode(0o600, -1, -1); err == nil || !strings.Contains(err.Error(), "replaced by another file") {
		t.Errorf("SetOwnerMode on a replaced file: %v", err)
	}
	if err := (File{}).Remove(); err != nil {
		t.Errorf("zero File: %v", err)
	}

	path = filepath.Join(t.TempDir(), "s")
	f = listen(t, path, 0o600)
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("Remove left its own file: %v", err)
	}
}
