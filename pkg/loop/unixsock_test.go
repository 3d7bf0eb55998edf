package loop

import (
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
	"golang.org/x/sys/unix"
)

// withUmask runs the test under umask m, restored at cleanup: a socket
// file's mode must not depend on it.
func withUmask(t *testing.T, m int) {
	old := unix.Umask(m)
	t.Cleanup(func() { unix.Umask(old) })
}

func fileStat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Sys().(*syscall.Stat_t)
}

// TestUnixSocketMode: the socket file has the mode asked for (or the
// default), whatever the process's umask, and the process's umask is left
// as it was.
func TestUnixSocketMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  os.FileMode
		umask int
		want  os.FileMode
	}{
		{"default under umask 077", 0, 0o077, DefaultSocketMode},
		{"0666 under umask 022", 0o666, 0o022, 0o666},
		{"0600 under umask 000", 0o600, 0, 0o600},
		{"0770 under umask 077", 0o770, 0o077, 0o770},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUmask(t, tc.umask)
			path := unixPath(t)
			_, l := startEngine(t, Config{}, ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, SocketMode: tc.mode})
			if got := os.FileMode(fileStat(t, path).Mode) & os.ModePerm; got != tc.want {
				t.Errorf("mode %04o, want %04o", got, tc.want)
			}
			if got := unix.Umask(tc.umask); got != tc.umask {
				t.Errorf("the process umask changed to %04o", got)
			}
			if l.Addr() != "unix://"+path {
				t.Errorf("Addr = %q", l.Addr())
			}
			testutil.RoundTrip(t, dial(t, l), "hello\n")
		})
	}
}

// TestUnixSocketNeverWider: while listeners are made and closed again and
// again, a watcher that stats the path as fast as it can never sees the
// file with a permission beyond its mode, whatever the umask (0 here): a
// bind followed by a chmod would show 0777 now and then.
func TestUnixSocketNeverWider(t *testing.T) {
	withUmask(t, 0)
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(t.Context())
	path := unixPath(t)
	stop := make(chan struct{})
	seen := make(chan os.FileMode, 1)
	var wider os.FileMode
	go func() {
		var worst os.FileMode
		defer func() { seen <- worst }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModePerm&^0o600 != 0 {
				worst = fi.Mode() & os.ModePerm
			}
		}
	}()
	for i := 0; i < 300 && wider == 0; i++ {
		for _, owner := range []string{"", strconv.Itoa(os.Getegid())} {
			l, err := e.Listen(ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, SocketMode: 0o600, SocketGroup: owner})
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
		}
	}
	close(stop)
	if wider = <-seen; wider != 0 {
		t.Fatalf("the socket file was seen with mode %04o, wider than 0600", wider)
	}
}

// TestUnixSocketOwner: user and group, by name or id, own the socket file,
// which has its mode too. Changing a file's owner needs root.
func TestUnixSocketOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	for _, tc := range []struct {
		name, user, group string
		uid, gid          int
	}{
		{"user by name", "nobody", "", uid, 0},
		{"group by id", "", nobody.Gid, 0, gid},
		{"both", "nobody", nobody.Gid, uid, gid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUmask(t, 0o022)
			path := unixPath(t)
			_, l := startEngine(t, Config{}, ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{},
				SocketMode: 0o660, SocketUser: tc.user, SocketGroup: tc.group})
			st := fileStat(t, path)
			if int(st.Uid) != tc.uid || int(st.Gid) != tc.gid || os.FileMode(st.Mode)&os.ModePerm != 0o660 {
				t.Errorf("owner %d:%d mode %04o, want %d:%d 0660", st.Uid, st.Gid, st.Mode&0o777, tc.uid, tc.gid)
			}
			testutil.RoundTrip(t, dial(t, l), "hello\n")
		})
	}
}

// TestUnixSocketBadOwner: an unknown user or group fails the listener,
// naming it, and leaves no file behind.
func TestUnixSocketBadOwner(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(t.Context())
	for _, tc := range []struct{ user, group, want string }{
		{"no-such-user-netd", "", `socket file owner: unknown user "no-such-user-netd"`},
		{"", "no-such-group-netd", `socket file owner: unknown group "no-such-group-netd"`},
	} {
		path := unixPath(t)
		_, err := e.Listen(ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, SocketUser: tc.user, SocketGroup: tc.group})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen: %v, want an error with %s", err, tc.want)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("a failed listener left %s: %v", path, err)
		}
	}
}

// TestUnixSocketRemovedOnlyIfOurs: on stop a listener removes its socket
// file, but not a file that replaced it meanwhile (a new process's, an
// operator's).
func TestUnixSocketRemovedOnlyIfOurs(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(t.Context())
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}

	path := unixPath(t)
	l, err := e.Listen(ListenerSpec{Name: "mine", Network: "unix", Address: path, Module: &lineEcho{}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the listener's own file is still there after Close: %v", err)
	}

	l, err = e.Listen(ListenerSpec{Name: "replaced", Network: "unix", Address: path, Module: &lineEcho{}})
	if err != nil {
		t.Fatal(err)
	}
	// Another process takes the path over: the file is removed and a new
	// socket bound there.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	other.(*net.UnixListener).SetUnlinkOnClose(false)
	defer other.Close()
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("Close removed a socket file that was not the listener's: %v", err)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		t.Fatalf("the other process's socket no longer answers: %v", err)
	}
	c.Close()
}

// TestUnixSocketLiveRefused: a path where a live socket listens is
// refused, and the live socket stays.
func TestUnixSocketLiveRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.sock")
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(t.Context())
	if _, err := e.Listen(ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the live socket's file is gone: %v", err)
	}
}

// TestUnixSocketReplaceChangesMode: a listener replaced on its socket with
// another mode (a reload) gives the file the new mode, and it still
// serves.
func TestUnixSocketReplaceChangesMode(t *testing.T) {
	path := unixPath(t)
	e, l := startEngine(t, Config{}, ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, SocketMode: 0o600})
	next, err := e.Replace(l, ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, SocketMode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	if got := os.FileMode(fileStat(t, path).Mode) & os.ModePerm; got != 0o666 {
		t.Errorf("mode after Replace %04o, want 0666", got)
	}
	testutil.RoundTrip(t, dial(t, next), "still here\n")
}

// TestBindListenerUnix: a socket bound ahead of a reload has its mode, and
// the listener that takes it over removes its file on stop.
func TestBindListenerUnix(t *testing.T) {
	withUmask(t, 0o077)
	path := unixPath(t)
	f, err := BindListener(ListenerSpec{Name: "t", Network: "unix", Address: path, SocketMode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := os.FileMode(fileStat(t, path).Mode) & os.ModePerm; got != 0o666 {
		t.Errorf("mode %04o, want 0666", got)
	}
	_, l := startEngine(t, Config{}, ListenerSpec{Name: "t", Network: "unix", Address: path, Module: &lineEcho{}, File: f, OwnSocketFile: true})
	testutil.RoundTrip(t, dial(t, l), "adopted\n")
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the adopted socket's file is still there after Close: %v", err)
	}
}
