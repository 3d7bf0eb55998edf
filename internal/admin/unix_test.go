package admin

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unixClient speaks HTTP over the unix socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func unixGet(t *testing.T, path, route string, header http.Header) (int, string) {
	t.Helper()
	method := "GET"
	if route == "/-/reload" {
		method = "POST"
	}
	req, err := http.NewRequest(method, "http://localhost"+route, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := unixClient(path).Do(req)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", method, route, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// owner is who the test may give a socket file to: nobody when it runs as
// root, itself otherwise.
func owner(t *testing.T) (uid, gid int) {
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("nobody"); err == nil {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
			return uid, gid
		}
	}
	return os.Geteuid(), os.Getegid()
}

// TestUnixSocket: the socket file has the configured mode and owner (a
// mode wider than the umask allows included), and whenever it is at its
// path, even under umask 0, it allows no more than that mode, and nothing
// beyond its owner before it has its final owner; Host means nothing
// there, Origin still does; nothing else is left in the directory;
// Shutdown removes the file.
func TestUnixSocket(t *testing.T) {
	uid, gid := owner(t)
	old := unix.Umask(0) // a bind followed by a chmod would show 0777
	t.Cleanup(func() { unix.Umask(old) })
	for _, mode := range []os.FileMode{0o600, 0o660, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "admin.sock")
			// Watch the path while New runs: whenever the file is there,
			// it must be no wider than mode, and no wider than its
			// owner's bits while its owner is not the final one.
			var stop atomic.Bool
			var wrong atomic.Value
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for !stop.Load() {
					if st, err := os.Lstat(path); err == nil {
						sys := st.Sys().(*syscall.Stat_t)
						final := int(sys.Uid) == uid && int(sys.Gid) == gid
						if st.Mode().Perm()&^mode != 0 || !final && st.Mode().Perm()&^0o700 != 0 {
							wrong.Store(st.Mode().String() + " " + strconv.Itoa(int(sys.Uid)) + ":" + strconv.Itoa(int(sys.Gid)))
						}
					}
				}
			}()
			s := start(t, Config{Network: "unix", Address: path, Mode: mode, UID: uid, GID: gid, Source: &fakeSource{ready: true}})
			stop.Store(true)
			<-watched
			if w := wrong.Load(); w != nil {
				t.Errorf("the socket file was seen at its path as %v, wider than mode %v with owner %d:%d", w, mode, uid, gid)
			}
			st, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != mode || int(sys.Uid) != uid || int(sys.Gid) != gid {
				t.Errorf("socket file: %v %d:%d, want socket %v %d:%d", st.Mode(), sys.Uid, sys.Gid, mode, uid, gid)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the socket: %v", len(entries), entries)
			}
			if s.URL() != "unix://"+path {
				t.Errorf("URL() = %q", s.URL())
			}
			if code, body := unixGet(t, path, "/readyz", http.Header{"Host": {"evil.example"}}); code != 200 {
				t.Errorf("readyz over unix: %d %q", code, body)
			}
			if code, body := unixGet(t, path, "/-/reload", http.Header{"Origin": {"http://evil.example"}}); code != 403 || !strings.Contains(body, "cross-origin") {
				t.Errorf("cross-origin POST over unix: %d %q, want 403", code, body)
			}
			if code, body := unixGet(t, path, "/-/reload", nil); code != 403 || !strings.Contains(body, "disabled") {
				t.Errorf("POST /-/reload with reload off: %d %q, want 403 saying it is disabled", code, body)
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket file still there after Shutdown: %v", err)
			}
		})
	}
}

// TestUnixSocketRefuses: a live socket at the path is not taken over, a
// file that is not a socket is not replaced, and a stale socket is.
func TestUnixSocketRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := func(path string) Config {
		return Config{Network: "unix", Address: path, Mode: 0o600, UID: -1, GID: -1, Source: &fakeSource{}}
	}
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if s, err := New(cfg(live)); err == nil || !strings.Contains(err.Error(), "in use") {
		if s != nil {
			s.Shutdown(context.Background())
		}
		t.Errorf("New on a live socket: %v", err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := New(cfg(plain)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		if s != nil {
			s.Shutdown(context.Background())
		}
		t.Errorf("New on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Error("the regular file was replaced")
	}
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	s, err := New(cfg(stale))
	if err != nil {
		t.Fatalf("New on a stale socket: %v", err)
	}
	s.Shutdown(context.Background())
	if s, err := New(cfg("relative.sock")); err == nil {
		s.Shutdown(context.Background())
		t.Error("New on a relative path succeeded")
	}
}

// TestUnixSocketHandover: a second server adopts the first one's socket
// (as an upgrade does); the first, disowned, leaves the file in place, and
// the second removes it at its own Shutdown, but not a file that has
// replaced it meanwhile.
func TestUnixSocketHandover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	cfg := Config{Network: "unix", Address: path, Mode: 0o600, UID: -1, GID: -1, Source: &fakeSource{ready: true}}
	old, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := old.File()
	if err != nil {
		t.Fatal(err)
	}
	if flags, err := fcntlFlags(f); err != nil || flags&syscall.FD_CLOEXEC == 0 {
		t.Errorf("handed-over socket: flags %#x, %v: want close-on-exec", flags, err)
	}
	cfg.File = f
	next, err := New(cfg)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	old.Disown()
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() { _ = next.Serve() }()
	if code, _ := unixGet(t, path, "/healthz", nil); code != 200 {
		t.Fatalf("the adopting server does not answer: %d", code)
	}
	// Someone replaced the file: Shutdown leaves theirs alone.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := next.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "theirs" {
		t.Errorf("Shutdown removed a file it did not make: %q, %v", b, err)
	}
}

func fcntlFlags(f *os.File) (int, error) {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(flags), nil
}
