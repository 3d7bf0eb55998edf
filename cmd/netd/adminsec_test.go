package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

// adminDo sends one request to an admin endpoint, over TCP (addr is
// host:port) or over a unix socket (addr is unix:///path), with the Host
// and Origin given ("" leaves them as Go sets them).
func adminDo(t *testing.T, addr, method, path, host, origin string) (int, string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	url := "http://" + addr + path
	if sock, ok := strings.CutPrefix(addr, "unix://"); ok {
		url = "http://localhost" + path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, addr, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminUnixSocket: admin.address unix:///path serves over a socket
// file with the configured mode and owner (checked by stat), and `netd
// reload -c FILE` reloads over it.
func TestAdminUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	owner := ""
	uid, gid := os.Geteuid(), os.Getegid()
	if os.Geteuid() == 0 {
		if nobody, err := user.Lookup("nobody"); err == nil {
			owner = "\n  user: nobody"
			uid, _ = strconv.Atoi(nobody.Uid)
		}
	}
	cfg := fmt.Sprintf("admin:\n  address: unix://%s\n  mode: \"0660\"\n  reload: true%s\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n", sock, owner)
	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	d := testutil.StartDaemon(t, nil, "-c", path)
	if got := d.Addrs["admin"]; got != "unix://"+sock {
		t.Errorf("listening line: admin=%q, want unix://%s", got, sock)
	}
	st, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o660 || int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("admin socket: %v owned by %d:%d, want a socket 0660 owned by %d:%d", st.Mode(), sys.Uid, sys.Gid, uid, gid)
	}
	if code, body := adminDo(t, "unix://"+sock, "GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz over the unix socket: %d %q", code, body)
	}
	r := testutil.RunNetd(t, nil, "reload", "-c", path)
	if r.Code != 0 || !strings.Contains(r.Stdout, "reloaded") {
		t.Fatalf("netd reload -c over a unix socket: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	_, text := adminDo(t, "unix://"+sock, "GET", "/metrics", "", "")
	if v := metricValue(t, text, `netd_reloads_total{result="ok"}`); v != 1 {
		t.Errorf("reloads ok = %v, want 1", v)
	}
	d.Stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket file left after a clean stop: %v", err)
	}
}

// TestAdminRefusesRebinding: a page served from evil.example that has
// rebound its name to 127.0.0.1 sends Host: evil.example and Origin:
// http://evil.example; the admin endpoint refuses both, and no reload runs.
func TestAdminRefusesRebinding(t *testing.T) {
	port := testutil.FreePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf("admin:\n  address: %s\n  reload: true\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n", admin)
	testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "netd.yaml", cfg))
	evilHost := fmt.Sprintf("evil.example:%d", port)
	for _, tc := range []struct {
		method, path, host, origin string
		want                       int
	}{
		{"GET", "/metrics", evilHost, "", 421},
		{"POST", "/-/reload", evilHost, "http://" + evilHost, 421},
		{"POST", "/-/reload", admin, "http://evil.example", 403},
		{"GET", "/healthz", "localhost:" + strconv.Itoa(port), "", 200},
	} {
		if code, body := adminDo(t, admin, tc.method, tc.path, tc.host, tc.origin); code != tc.want {
			t.Errorf("%s %s Host %q Origin %q: %d %q, want %d", tc.method, tc.path, tc.host, tc.origin, code, body, tc.want)
		}
	}
	_, text := adminDo(t, admin, "GET", "/metrics", "", "")
	if strings.Contains(text, `netd_reloads_total{result="ok"} 1`) {
		t.Errorf("a refused request reloaded:\n%s", text)
	}
}

// TestReloadDisabledByDefault: without admin.reload, POST /-/reload is
// refused with a message saying how to enable it, and `netd reload -c`
// says so without asking the daemon.
func TestReloadDisabledByDefault(t *testing.T) {
	port := testutil.FreePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf("admin:\n  address: %s\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n", admin)
	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	testutil.StartDaemon(t, nil, "-c", path)
	if code, body := adminDo(t, admin, "POST", "/-/reload", "", ""); code != 403 || !strings.Contains(body, "admin.reload: true") {
		t.Errorf("POST /-/reload without admin.reload: %d %q, want 403 naming admin.reload", code, body)
	}
	r := testutil.RunNetd(t, nil, "reload", "-c", path)
	if r.Code != 1 || !strings.Contains(r.Stderr, "disabled") || !strings.Contains(r.Stderr, path) {
		t.Errorf("netd reload -c with reload disabled: exit %d, %q", r.Code, r.Stderr)
	}
	_, text := adminDo(t, admin, "GET", "/metrics", "", "")
	if strings.Contains(text, `netd_reloads_total{result="ok"} 1`) {
		t.Errorf("a reload ran though disabled")
	}
}

// upgrading is a `netd serve` started for an upgrade test: its log goes
// to a file (a file, not a pipe: the new process inherits it).
type upgrading struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	oldDone chan int
	newPID  int
}

var listeningPID = regexp.MustCompile(`listening: pid=(\d+)`)

func startUpgrading(t *testing.T, cmd *exec.Cmd) *upgrading {
	t.Helper()
	u := &upgrading{t: t, cmd: cmd, logPath: filepath.Join(t.TempDir(), "netd.log"), oldDone: make(chan int, 1)}
	logFile, err := os.Create(u.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); u.oldDone <- cmd.ProcessState.ExitCode() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if u.newPID > 0 {
			_ = syscall.Kill(u.newPID, syscall.SIGTERM)
			for deadline := time.Now().Add(15 * time.Second); syscall.Kill(u.newPID, 0) == nil && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	u.waitListening(1)
	return u
}

func (u *upgrading) log() string { b, _ := os.ReadFile(u.logPath); return string(b) }

// waitListening waits for the n'th listening line and returns its pid.
func (u *upgrading) waitListening(n int) int {
	u.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := listeningPID.FindAllStringSubmatch(u.log(), -1); len(m) >= n {
			pid, _ := strconv.Atoi(m[n-1][1])
			return pid
		}
	}
	u.t.Fatalf("no listening line #%d:\n%s", n, u.log())
	return 0
}

// upgrade sends SIGUSR2 and waits until the new process listens and the
// old one has exited 0; it returns the new process's pid.
func (u *upgrading) upgrade() int {
	u.t.Helper()
	if err := u.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		u.t.Fatal(err)
	}
	u.newPID = u.waitListening(2)
	if u.newPID == u.cmd.Process.Pid {
		u.t.Fatalf("the second listening line is the old process's:\n%s", u.log())
	}
	select {
	case code := <-u.oldDone:
		if code != 0 {
			u.t.Errorf("old process exit %d, want 0\n%s", code, u.log())
		}
	case <-time.After(20 * time.Second):
		u.t.Fatalf("old process did not exit after the upgrade:\n%s", u.log())
	}
	return u.newPID
}

// TestUpgradeWithAdmin: with a unix admin socket, SIGUSR2 hands it over:
// the admin endpoint answers before and after, from the same socket file,
// which the old process leaves in place.
func TestUpgradeWithAdmin(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf("shutdown_timeout: 5s\nadmin:\n  address: unix://%s\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n", sock)
	u := startUpgrading(t, exec.Command(testutil.Netd(t), "serve", "-c", testutil.WriteConfig(t, "netd.yaml", cfg)))
	admin := "unix://" + sock
	if code, body := adminDo(t, admin, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("admin before the upgrade: %d %q", code, body)
	}
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	u.upgrade()
	after, err := os.Lstat(sock)
	if err != nil {
		t.Fatalf("admin socket file gone after the upgrade: %v\n%s", err, u.log())
	}
	if !os.SameFile(before, after) {
		t.Errorf("the admin socket file was replaced, not handed over")
	}
	if code, body := adminDo(t, admin, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("admin after the upgrade: %d %q\n%s", code, body, u.log())
	}
	if !strings.Contains(u.log(), "admin_adopted=true") {
		t.Errorf("the new process does not say it adopted the admin socket:\n%s", u.log())
	}
	// The answer comes from the new process: the old one has exited.
	if syscall.Kill(u.cmd.Process.Pid, 0) == nil {
		t.Errorf("old process %d still runs", u.cmd.Process.Pid)
	}
}

// worldDir is a temp directory any user may read and enter (t.TempDir is
// 0700), for what an unprivileged process must reach.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "netd-world-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyBinary copies netd to dir/netd, executable by anyone.
func copyBinary(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Netd(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "netd")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// exeOf is the binary process pid runs.
func exeOf(t *testing.T, pid int) string {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestUpgradeExecPath: netd started as "netd" through PATH (from another
// working directory) upgrades into the binary it was started from, not
// into whatever PATH names at upgrade time, and logs that path.
func TestUpgradeExecPath(t *testing.T) {
	started, other, cwd := worldDir(t), worldDir(t), worldDir(t)
	bin := copyBinary(t, started)
	copyBinary(t, other)
	cfg := "shutdown_timeout: 5s\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n"
	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	cmd := &exec.Cmd{Path: bin, Args: []string{"netd", "serve", "-c", path}, Dir: cwd}
	cmd.Env = append(os.Environ(), "PATH="+other)
	u := startUpgrading(t, cmd)
	if got := exeOf(t, cmd.Process.Pid); got != bin {
		t.Fatalf("the test started %s, not %s", got, bin)
	}
	newPID := u.upgrade()
	if got := exeOf(t, newPID); got != bin {
		t.Errorf("the upgrade started %s, want %s (the binary netd was started from)", got, bin)
	}
	if !strings.Contains(u.log(), "path="+bin) {
		t.Errorf("the upgrade does not log the binary it starts (%s):\n%s", bin, u.log())
	}
}

// TestUpgradeAsUser: as root, netd binds a port below 1024 and a unix
// admin socket, drops to nobody, and on SIGUSR2 starts its successor as
// nobody; that one adopts every socket, needs no root, says it has no
// privileges to drop, and serves.
func TestUpgradeAsUser(t *testing.T) {
	nobody, port := nobodyAndLowPort(t)
	dir := worldDir(t)
	bin := copyBinary(t, dir)
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf("shutdown_timeout: 5s\nuser: nobody\nadmin:\n  address: unix://%s\nlisteners:\n  - {name: low, address: 'tcp://127.0.0.1:%d', module: echo}\n", sock, port)
	path := filepath.Join(dir, "netd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", path)
	cmd.Dir = dir
	u := startUpgrading(t, cmd)
	echo := func(when string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v\n%s", when, err, u.log())
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		testutil.RoundTrip(t, c, when+"\n")
	}
	echo("before")
	newPID := u.upgrade()
	echo("after")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", newPID))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(status))
	if m == nil || m[1] != nobody.Uid || m[2] != nobody.Uid {
		t.Errorf("new process runs as %v, want uid %s", m, nobody.Uid)
	}
	if !strings.Contains(u.log(), "no privilege drop needed") {
		t.Errorf("the new process does not say it skipped the drop:\n%s", u.log())
	}
	if code, body := adminDo(t, "unix://"+sock, "GET", "/healthz", "", ""); code != 200 {
		t.Errorf("admin after the upgrade: %d %q", code, body)
	}
}
