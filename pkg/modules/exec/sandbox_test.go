package exec_test

import (
	"fmt"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/exec"
)

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return st
}

// runOnce starts one child of e on l with a client that stays open, waits
// for it to exit and reaps it; the file out is what it wrote there.
func runOnce(t *testing.T, e *exec.Exec, l *apitest.Loop, out string) string {
	t.Helper()
	s := accept(t, e, l)
	s.reap(t, l)
	s.client.Terminate(api.ReasonError, nil)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUserAndGroup: with user (and group) the child runs with those ids,
// the group as its only supplementary group, and none of root's
// capabilities.
func TestUserAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	for _, tc := range []struct {
		opts      string
		uid, gids string
	}{
		{"user: nobody", nobody.Uid, nobody.Gid},
		{"user: \"" + nobody.Uid + "\"\ngroup: \"4242\"", nobody.Uid, "4242"},
	} {
		e, _ := newExec(t, "tcp", "command: /bin/sleep\nargs: [\"100\"]\n"+tc.opts)
		l := apitest.NewLoop(apitest.WithT(t))
		s := accept(t, e, l)
		st := procStatus(t, pidOf(t, s.pidfd))
		want := map[string]string{
			"Uid":    strings.Repeat(tc.uid+" ", 3) + tc.uid,
			"Gid":    strings.Repeat(tc.gids+" ", 3) + tc.gids,
			"Groups": tc.gids,
			"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapAmb": "0000000000000000",
		}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s: %s %q, want %q", tc.opts, k, st[k], v)
			}
		}
		s.client.Terminate(api.ReasonError, nil)
		s.reap(t, l)
	}
}

// TestRlimitsAndNoNewPrivs: the limits are the program's from its first
// instruction (the helper sets them before it execs the program), soft and
// hard alike, and no_new_privs is set.
func TestRlimitsAndNoNewPrivs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "limits")
	// The fake loop does not read the child's stdout: the script writes
	// to the file.
	e, logger := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'exec > "$0"; ulimit -n; ulimit -Hn; ulimit -t; ulimit -v; awk "/^Max processes/ {print \$3, \$4}" /proc/self/limits; grep NoNewPrivs /proc/self/status', `+out+`]
rlimits: {nofile: 64, cpu: 7, as: 1073741824, nproc: 500}
no_new_privs: true`)
	l := apitest.NewLoop(apitest.WithT(t))
	got := runOnce(t, e, l, out)
	want := "64\n64\n7\n1048576\n500 500\nNoNewPrivs:\t1\n"
	if got != want {
		t.Errorf("the child saw\n%s\nwant\n%s\nlog:\n%s", got, want, logger)
	}
}

// TestAmbientCapabilitiesCleared: a netd with ambient capabilities (systemd's
// AmbientCapabilities=) does not pass them on to its children.
func TestAmbientCapabilitiesCleared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_NET_BIND_SERVICE to raise it as an ambient capability")
	}
	// Capabilities belong to a thread: this one raises an ambient
	// capability, provisions (which looks at this thread) and starts the
	// child from it, then drops it again.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	saved := data
	data[0].Inheritable |= 1 << unix.CAP_NET_BIND_SERVICE
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
		_ = unix.Capset(&hdr, &saved[0])
	}()
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_BIND_SERVICE, 0, 0); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "caps")
	e, _ := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'grep CapAmb /proc/self/status > "$0"', `+out+`]`)
	l := apitest.NewLoop(apitest.WithT(t))
	if got := runOnce(t, e, l, out); got != "CapAmb:\t0000000000000000\n" {
		t.Errorf("the child has %q", got)
	}
}

// TestOnlyStdioDescriptors: the child has descriptors 0, 1 and 2, and
// nothing else of netd's (ls's own 3 is the directory it lists).
func TestOnlyStdioDescriptors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fds")
	// A descriptor netd might leak, were it not close-on-exec.
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, _ := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'ls /proc/self/fd > "$0"', `+out+`]`)
	l := apitest.NewLoop(apitest.WithT(t))
	if got := strings.Fields(runOnce(t, e, l, out)); strings.Join(got, " ") != "0 1 2 3" {
		t.Errorf("the child's descriptors: %v, want 0 1 2 (and ls's 3)", got)
	}
}

// TestStderrLogged: what a child writes to stderr is logged a line at a
// time, escaped so that it cannot forge a line of netd's log or send a
// terminal escape; long lines are cut, and lines beyond the rate limit
// are counted, not logged.
func TestStderrLogged(t *testing.T) {
	long := strings.Repeat("x", 2*exec.MaxStderrLine)
	e, logger := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'printf "\033[31mfake\033[0m\r\n2026-01-01T00:00:00Z [ERROR] netd: forged\nthird" >&2']`)
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l)
	s.reap(t, l)
	if len(l.Watched()) != 1 {
		t.Fatalf("watched %v, want the stderr pipe", l.Watched())
	}
	l.Fire(l.Watched()[0])
	s.client.Terminate(api.ReasonError, nil)
	lines := logger.Find(hclog.Warn, "child stderr")
	if len(lines) != 1 {
		t.Fatalf("logged %d stderr lines, want 1 (the rate limit lets one a second through):\n%s", len(lines), logger)
	}
	if got, _ := lines[0].Arg("line"); got != `\x1b[31mfake\x1b[0m\r` {
		t.Errorf("line = %q", got)
	}
	if n := counterValue(t, e, exec.MetricStderrDropped); n != 2 {
		t.Errorf("%s = %v, want 2", exec.MetricStderrDropped, n)
	}
	if strings.Contains(logger.String(), "\x1b") || strings.Contains(logger.String(), "\n2026-01-01") {
		t.Errorf("raw bytes reached the log:\n%q", logger.String())
	}

	// An over-long line is cut at MaxStderrLine; the next line logged
	// says how many were dropped.
	dir := t.TempDir()
	e, logger = newExec(t, "tcp", `command: /bin/sh
args: [-c, 'echo `+long+` >&2; echo tail >&2; echo dropped >&2; touch "$0.ready"; while [ ! -e "$0.go" ]; do sleep 0.01; done; echo next >&2', `+filepath.Join(dir, "f")+`]`)
	s = accept(t, e, l)
	stderrFd := l.Watched()[1]
	waitFile(t, filepath.Join(dir, "f.ready"))
	l.Fire(stderrFd)
	l.Advance(2 * time.Second)
	if err := os.WriteFile(filepath.Join(dir, "f.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.reap(t, l)
	l.Fire(stderrFd)
	s.client.Terminate(api.ReasonError, nil)
	lines = logger.Find(hclog.Warn, "child stderr")
	if len(lines) != 2 {
		t.Fatalf("logged %d stderr lines, want 2:\n%s", len(lines), logger)
	}
	if got, _ := lines[0].Arg("line"); got != long[:exec.MaxStderrLine] {
		t.Errorf("long line: %v logged", got)
	}
	if tr, _ := lines[0].Arg("truncated"); tr != true {
		t.Errorf("truncated = %v", tr)
	}
	if got, _ := lines[1].Arg("line"); got != "next" {
		t.Errorf("second line = %q", got)
	}
	if d, _ := lines[1].Arg("dropped"); d != int64(2) {
		t.Errorf("dropped = %v (%T)", d, d)
	}
}

// counterValue reads one of e's counters.
func counterValue(t *testing.T, e *exec.Exec, name string) float64 {
	t.Helper()
	var m dto.Metric
	if err := e.Counter(name).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestEscapeLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":          "plain text",
		"a\nb":                `a\nb`,
		"\x1b[2J":             `\x1b[2J`,
		`say "hi" \ bye`:      `say "hi" \\ bye`,
		"\xff\x00":            `\xff\x00`,
		"ünïcode ok":          "ünïcode ok",
		"\u202eright-to-left": `\u202eright-to-left`,
	} {
		if got := exec.EscapeLine([]byte(in)); got != want {
			t.Errorf("EscapeLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscapeLine(f *testing.F) {
	f.Add([]byte("\x1b[31mred\r\n"))
	f.Add([]byte(`"\"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := exec.EscapeLine(b)
		for _, r := range got {
			if r < 0x20 || r == 0x7f || !strconv.IsPrint(r) {
				t.Fatalf("EscapeLine(%q) = %q holds %U", b, got, r)
			}
		}
		// Putting back the escapes of the quotes gives strconv.Quote's
		// text, which reads back as the bytes logged.
		back, err := strconv.Unquote(`"` + strings.ReplaceAll(got, `"`, `\"`) + `"`)
		if err != nil || back != string(b) {
			t.Fatalf("EscapeLine(%q) = %q, which reads back as %q, %v", b, got, back, err)
		}
	})
}

// TestLeftoversDieWithTheSession: what a child leaves running dies when its
// session ends (the child exited and the client closed). In a cgroup of
// its own, that includes a grandchild that left the process group with
// setsid; without one, only the process group is killed, and a setsid
// grandchild escapes, which is why netd says so in its log.
func TestLeftoversDieWithTheSession(t *testing.T) {
	run := func(t *testing.T, cgroups bool) (inGroup, escaped int) {
		dir := t.TempDir()
		e, _ := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$0.tmp"; mv "$0.tmp" "$0"; setsid sh -c "echo \$\$ > $0.s.tmp; mv $0.s.tmp $0.s; exec sleep 300" </dev/null >/dev/null 2>&1 &', `+filepath.Join(dir, "pid")+`]`)
		if !cgroups {
			exec.DisableCgroups(e)
		} else if exec.Cgroups(e) == "" {
			t.Skipf("children cannot get cgroups of their own here (%v): only the process-group fallback is tested", exec.CgroupsWhy())
		}
		l := apitest.NewLoop(apitest.WithT(t))
		s := accept(t, e, l)
		waitFile(t, filepath.Join(dir, "pid"))
		waitFile(t, filepath.Join(dir, "pid.s"))
		inGroup, escaped = readPid(t, filepath.Join(dir, "pid")), readPid(t, filepath.Join(dir, "pid.s"))
		t.Cleanup(func() { _ = syscall.Kill(escaped, syscall.SIGKILL); _ = syscall.Kill(inGroup, syscall.SIGKILL) })
		if sid, _ := unix.Getsid(escaped); sid != escaped {
			t.Fatalf("grandchild %d: session %d, want its own", escaped, sid)
		}
		s.reap(t, l) // the child exited: the session goes on while the client is open
		if !alive(inGroup) || !alive(escaped) {
			t.Fatal("a grandchild died before its session ended")
		}
		s.child.FeedEOF() // its output ends: the client is closed, the session ends
		if !s.client.Closed() || e.Live() != 0 {
			t.Fatalf("client closed %v, live %d", s.client.Closed(), e.Live())
		}
		return inGroup, escaped
	}
	t.Run("cgroup", func(t *testing.T) {
		inGroup, escaped := run(t, true)
		waitDead(t, inGroup)
		waitDead(t, escaped)
	})
	t.Run("process group", func(t *testing.T) {
		inGroup, escaped := run(t, false)
		waitDead(t, inGroup)
		if !alive(escaped) {
			t.Errorf("a setsid grandchild died without a cgroup: the fallback kills only the process group, what does?")
		}
	})
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("%s: %q", path, b)
	}
	return pid
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive 10s after its session ended", pid)
		}
	}
}

// TestOrphanCgroupsRemoved: the cgroup a netd that no longer runs left
// behind, with a process in it, is killed and removed when a netd finds
// its cgroups.
func TestOrphanCgroupsRemoved(t *testing.T) {
	dir := exec.CgroupsDir()
	if dir == "" {
		t.Skipf("children cannot get cgroups of their own here: %v", exec.CgroupsWhy())
	}
	// A pid that runs nothing: one of a process that has exited.
	gone := osexec.Command("/bin/true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, fmt.Sprintf("netd-exec-%d-1", gone.Process.Pid))
	if err := os.Mkdir(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(orphan, "cgroup.kill"), []byte("1"), 0)
		_ = syscall.Rmdir(orphan)
	})
	sleeper := osexec.Command("/bin/sleep", "300")
	cg, err := os.Open(orphan)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	sleeper.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Wait()
	defer sleeper.Process.Kill()
	exec.RemoveOrphanCgroups(dir)
	if err := sleeper.Wait(); err == nil {
		t.Error("the orphan cgroup's process exited cleanly: it was not killed")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		exec.RemoveOrphanCgroups(dir)
		if _, err := os.Stat(orphan); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there", orphan)
		}
	}
}
