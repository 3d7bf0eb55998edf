package main_test

// End-to-end tests of what an exec child may reach of netd's: descriptors,
// environment, identity, limits, log, and the processes it leaves behind.

import (
	"fmt"
	"io"
	"net"
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
	"golang.org/x/sys/unix"
)

// TestExecChildSeesOnlyStdio: a child lists its descriptors, and sees only
// 0, 1, 2 (and ls's own 3) while netd holds a socket systemd passed, a
// stray descriptor its parent leaked to it, an admin listener, its
// listeners and their connections; and again in the process an upgrade
// (SIGUSR2) started, which inherited its sockets from the old one. (An
// upgrade with an admin endpoint fails today, issue 11: the upgrade is
// tested without one.)
func TestExecChildSeesOnlyStdio(t *testing.T) {
	t.Run("activated+admin", func(t *testing.T) { execChildFds(t, true, false) })
	t.Run("upgraded", func(t *testing.T) { execChildFds(t, false, true) })
}

func execChildFds(t *testing.T, admin, upgrade bool) {
	dir := t.TempDir()
	activated, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer activated.Close()
	actFile, err := activated.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer actFile.Close()
	strayR, strayW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer strayR.Close()
	defer strayW.Close()
	port, adminPort := testutil.FreePort(t), testutil.FreePort(t)
	adminCfg := ""
	if admin {
		adminCfg = fmt.Sprintf("admin:\n  address: 127.0.0.1:%d\n", adminPort)
	}
	cfg := fmt.Sprintf(`shutdown_timeout: 5s
%slisteners:
  - name: act
    address: fd://act
    module: echo
  - name: u
    address: unix://%s/u.sock
    module: echo
  - name: x
    address: tcp://127.0.0.1:%d
    module: exec
    options:
      command: /bin/ls
      args: [/proc/self/fd]
`, adminCfg, dir, port)
	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	logPath := filepath.Join(dir, "netd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// systemd's protocol: LISTEN_PID is netd's own pid, which the shell
	// knows ($$) and keeps across its exec.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=act exec "$0" serve -c "$1"`, testutil.Netd(t), path)
	cmd.Env = os.Environ()
	cmd.ExtraFiles = []*os.File{actFile, strayR} // 3: the socket, 4: a stray
	cmd.Stdout, cmd.Stderr = logFile, logFile    // a file: the upgraded process inherits it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	newPID := 0
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if newPID > 0 {
			_ = syscall.Kill(newPID, syscall.SIGTERM)
		}
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	listening := regexp.MustCompile(`listening: pid=(\d+)`)
	waitListening := func(n int) int {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(logPath)
			if m := listening.FindAllStringSubmatch(string(b), -1); len(m) >= n {
				pid, _ := strconv.Atoi(m[n-1][1])
				return pid
			}
		}
		b, _ := os.ReadFile(logPath)
		t.Fatalf("no listening line #%d:\n%s", n, b)
		return 0
	}
	check := func(pid int) {
		t.Helper()
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		// netd itself holds the systemd socket, the admin listener,
		// its listeners and its epoll descriptors: a leak would show.
		if len(fds) < 7 {
			t.Fatalf("netd %d holds only %d descriptors: the test proves nothing", pid, len(fds))
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(c)
		if got := strings.Fields(string(b)); err != nil || strings.Join(got, " ") != "0 1 2 3" {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("netd %d: the child's descriptors are %q (%v), want 0 1 2 and ls's 3\n%s", pid, got, err, log)
		}
		a, err := net.DialTimeout("tcp", activated.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		_ = a.SetDeadline(time.Now().Add(20 * time.Second))
		testutil.RoundTrip(t, a, "activated\n")
	}
	oldPID := waitListening(1)
	check(oldPID)
	if !upgrade {
		return
	}
	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	newPID = waitListening(2)
	if newPID == oldPID {
		t.Fatal("the second listening line is the old process's")
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the old process did not exit after the upgrade")
	}
	check(newPID)
}

// TestExecStderr: a child's stderr goes to the log escaped, one line, so
// that a fake log line and a terminal escape stay inside it; to the client
// with stderr: connection; nowhere with stderr: discard.
func TestExecStderr(t *testing.T) {
	script := `printf '\033[31mred\033[0m 2026-01-01T00:00:00.000Z [ERROR] netd: one\n2026-01-01T00:00:00.000Z [ERROR] netd: forged\n' >&2; echo out`
	cfg := "listeners:\n"
	for _, mode := range []string{"log", "connection", "discard"} {
		cfg += fmt.Sprintf("  - name: %s\n    address: tcp://127.0.0.1:0\n    module: exec\n    options:\n      command: /bin/sh\n      args: [-c, %q]\n      stderr: %s\n", mode, script, mode)
	}
	d := testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "x.yaml", cfg))
	read := func(name string) string {
		c := d.Dial(name)
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("discard"); got != "out\n" {
		t.Errorf("discard: client got %q", got)
	}
	if got := read("connection"); !strings.Contains(got, "netd: forged\n") || !strings.HasSuffix(got, "out\n") {
		t.Errorf("connection: client got %q", got)
	}
	if got := read("log"); got != "out\n" {
		t.Errorf("log: client got %q", got)
	}
	d.WaitLog(regexp.MustCompile(regexp.QuoteMeta("child stderr")), 0)
	waitNoChildren(t, d.PID(), 10*time.Second)
	log := d.Log()
	if strings.Contains(log, "\x1b") {
		t.Errorf("a terminal escape reached the log:\n%q", log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "2026-01-01T00:00:00.000Z") {
			t.Errorf("a child forged a log line: %q", line)
		}
		if strings.Contains(line, "child stderr") && !strings.Contains(line, `\x1b[31mred\x1b[0m 2026-01-01T00:00:00.000Z [ERROR] netd: one`) {
			t.Errorf("stderr line logged as %q", line)
		}
		if strings.Contains(line, "child stderr") && !strings.Contains(line, "listener.log") {
			t.Errorf("stderr of a listener that does not log it: %q", line)
		}
	}
}

// TestExecIdentityEnvironmentLimits: through the real binary, whose exec
// helper sets the limits: the child runs as user nobody, with the
// descriptor limit, and with only the environment it was given.
func TestExecIdentityEnvironmentLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start children as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	cfg := `listeners:
  - name: x
    address: tcp://127.0.0.1:0
    module: exec
    options:
      command: /bin/sh
      args: [-c, 'id -u; id -G; ulimit -n; env | sort']
      user: nobody
      env_keep: [NETD_E2E_KEPT]
      rlimits: {nofile: 50}
`
	d := testutil.StartDaemon(t, []string{"NETD_E2E_SECRET=s3cret", "NETD_E2E_KEPT=kept", "HOME=/root"}, "-c", testutil.WriteConfig(t, "x.yaml", cfg))
	c := d.Dial("x")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(got) < 4 || got[0] != nobody.Uid || got[1] != nobody.Gid || got[2] != "50" {
		t.Fatalf("child printed:\n%s\nwant uid %s, groups %s, nofile 50\n%s", b, nobody.Uid, nobody.Gid, d.Log())
	}
	env := map[string]string{}
	for _, kv := range got[3:] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["NETD_E2E_KEPT"] != "kept" || env["PATH"] != "/usr/local/bin:/usr/bin:/bin" {
		t.Errorf("environment: %q", got[3:])
	}
	for _, k := range []string{"NETD_E2E_SECRET", "HOME", "TABLEFLIP_HAS_PARENT_7DIU3"} {
		if _, ok := env[k]; ok {
			t.Errorf("the child has %s", k)
		}
	}
	waitNoChildren(t, d.PID(), 10*time.Second)
}

// TestExecSetsidGrandchildDies: a child starts a grandchild that leaves
// its process group (setsid) and runs on; once the connection has closed,
// the grandchild is dead: its cgroup was killed. Where netd cannot create
// cgroups it says so in its log, and only its process group dies (the
// module's TestLeftoversDieWithTheSession tests that fallback).
func TestExecSetsidGrandchildDies(t *testing.T) {
	d := execDaemon(t, `command: /bin/sh
args: [-c, 'setsid sh -c "echo \$\$; exec sleep 300 >/dev/null" </dev/null 2>/dev/null & read go']`)
	c := d.Dial("x")
	defer c.Close()
	pid, err := strconv.Atoi(readLine(t, c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // if it escaped
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Fatalf("grandchild %d: session %d, %v: want a session of its own", pid, sid, err)
	}
	if _, err := io.WriteString(c, "go\n"); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, c, 10*time.Second)
	if strings.Contains(d.Log(), "cannot get cgroups of their own") {
		t.Skipf("netd cannot create cgroups here; the setsid grandchild is out of its reach (log:\n%s)", d.Log())
	}
	waitGone(t, pid, 10*time.Second)
	waitNoChildren(t, d.PID(), 10*time.Second)
}

// TestValidateWarnsAboutExecAsRoot: netd validate, run as root, warns (on
// stderr, exit 0) about an exec listener whose children would run as root;
// not about one with user set.
func TestValidateWarnsAboutExecAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the warning is for netd running as root")
	}
	cfg := "listeners:\n  - name: x\n    address: tcp://127.0.0.1:0\n    module: exec\n    options: {command: /bin/true%s}\n"
	r := testutil.RunNetd(t, nil, "validate", "-c", testutil.WriteConfig(t, "root.yaml", fmt.Sprintf(cfg, "")))
	if r.Code != 0 || strings.Count(r.Stderr, "children run as root") != 1 || !strings.Contains(r.Stderr, "listener.x") {
		t.Errorf("without user: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = testutil.RunNetd(t, nil, "validate", "-c", testutil.WriteConfig(t, "user.yaml", fmt.Sprintf(cfg, ", user: nobody")))
	if r.Code != 0 || strings.Contains(r.Stderr, "root") {
		t.Errorf("with user: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestExecUserAfterPrivilegeDrop: with netd's own privilege drop (top-level
// user), an exec listener may name that same user, and its children run
// as it; naming another user fails the start-up with a message that says
// why, since only root can switch users.
func TestExecUserAfterPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	cfg := "user: nobody\nlisteners:\n  - name: x\n    address: tcp://127.0.0.1:0\n    module: exec\n    options: {command: /bin/sh, args: [-c, 'id -u'], user: %s}\n"
	d := testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "same.yaml", fmt.Sprintf(cfg, "nobody")))
	b, err := io.ReadAll(d.Dial("x"))
	if err != nil || strings.TrimSpace(string(b)) != nobody.Uid {
		t.Errorf("child printed %q, %v; want uid %s\n%s", b, err, nobody.Uid, d.Log())
	}
	r := testutil.RunNetd(t, nil, "serve", "-c", testutil.WriteConfig(t, "other.yaml", fmt.Sprintf(cfg, "root")))
	if r.Code != 1 || !strings.Contains(r.Stderr, "cannot start children as uid 0") {
		t.Errorf("exec user root under a netd that dropped to nobody: exit %d\n%s", r.Code, r.Stderr)
	}
}
