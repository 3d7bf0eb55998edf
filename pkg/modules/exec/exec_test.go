package exec_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/exec"
)

// newExec provisions an exec instance on network with the given options,
// and returns it with the logger it logs to.
func newExec(t *testing.T, network, options string) (*exec.Exec, *apitest.Logger) {
	t.Helper()
	e := new(exec.Exec)
	logger := apitest.NewLogger(t)
	err := e.Provision(api.Setup{Listener: "svc", Network: network, Options: apitest.Options(t, options), Logger: logger})
	if err != nil {
		t.Fatalf("Provision(%q): %v", options, err)
	}
	t.Cleanup(func() {
		_ = e.Stop()
		if n := e.Live(); n != 0 {
			t.Errorf("%d children left after Stop", n)
		}
	})
	return e, logger
}

// session is one accepted client, its child's connection and the pidfd
// the module watches.
type session struct {
	client *apitest.Conn
	child  *apitest.Conn
	pidfd  int
}

// accept connects a client on l and returns what the module set up.
func accept(t *testing.T, e *exec.Exec, l *apitest.Loop, opts ...apitest.Option) session {
	t.Helper()
	na, nw := len(l.Attached()), len(l.Watched())
	c := apitest.NewConn(e, append([]apitest.Option{apitest.WithT(t), apitest.WithLoop(l)}, opts...)...)
	a, w := l.Attached(), l.Watched()
	// The pidfd, then the stderr pipe when stderr is logged.
	if len(a) != na+1 || len(w) != nw+1 && len(w) != nw+2 {
		t.Fatalf("accepting a client attached %d and watched %d descriptors, want 1 and 1 or 2 (client closing %v, err %v)",
			len(a)-na, len(w)-nw, c.Closing(), c.Err())
	}
	return session{client: c, child: a[na], pidfd: w[nw]}
}

// reap waits until the child has exited, then fires the module's watch.
func (s session) reap(t *testing.T, l *apitest.Loop) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(s.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10_000)
	if err != nil || n != 1 {
		t.Fatalf("child still running after 10s (poll %d, %v)", n, err)
	}
	if !l.Fire(s.pidfd) {
		t.Fatal("nothing watches the pidfd")
	}
}

func TestRegistered(t *testing.T) {
	info, ok := api.Lookup("exec")
	if !ok {
		t.Fatal("exec is not registered")
	}
	if _, ok := info.New().(*exec.Exec); !ok {
		t.Errorf("New returns %T", info.New())
	}
	if info.Description == "" || strings.ContainsAny(info.Description, "\r\n") {
		t.Errorf("Description %q: want one line", info.Description)
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		yaml string
		want string // "" for success, else a substring of the error
	}{
		{"command: /bin/cat", ""},
		{"command: /bin/sh\nargs: [-c, 'echo hi']\nenv: {GREETING: hello}\ninstances: 10", ""},
		{"", "options.yaml:1:1: option command: exec needs a command"},
		{"command: cat", `options.yaml:1:10: option command: command must be an absolute path, not "cat"`},
		{"command: /nonexistent/prog", "options.yaml:1:10: option command: stat /nonexistent/prog: no such file or directory"},
		{"command: " + dir, "is not a regular file"},
		{"command: " + plain, "is not executable"},
		{"command: /bin/cat\ninstances: -1", "options.yaml:2:12: option instances: instances must be 0 (unlimited) or more, not -1"},
		{"command: /bin/cat\nargs: -n", "options.yaml:2:7: option args: want a list of strings"},
		{"command: /bin/cat\nenv: [A]", "options.yaml:2:6: option env: want a mapping of strings"},
		{"command: /bin/cat\nenv: {\"A=B\": x}", `option env: bad variable name "A=B"`},
		{"command: /bin/cat\nuser: nobody\ngroup: \"65534\"\nenv_keep: [LANG]\nrlimits: {nofile: 64, nproc: 10, as: 1073741824, cpu: 5}\nno_new_privs: true\nstderr: discard", ""},
		{"command: /bin/cat\nuser: \"65534\"\ngroup: \"65534\"\nstderr: connection", ""},
		{"command: /bin/cat\nuser: netd-no-such-user", `options.yaml:2:7: option user: unknown user "netd-no-such-user"`},
		{"command: /bin/cat\nuser: 12x", `option user: unknown user "12x"`},
		{"command: /bin/cat\nuser: \"4294967295\"\ngroup: \"1\"", `option user: unknown user "4294967295"`},
		{"command: /bin/cat\nuser: nobody\ngroup: netd-no-such-group", `options.yaml:3:8: option group: unknown group "netd-no-such-group"`},
		{"command: /bin/cat\ngroup: nogroup", "options.yaml:2:8: option group: group needs user"},
		{"command: /bin/cat\nuser: \"4000000\"", "option user: user 4000000 is not in the user database: give group too"},
		{"command: /bin/cat\nenv_keep: [\"A=B\"]", `options.yaml:2:11: option env_keep: bad variable name "A=B"`},
		{"command: /bin/cat\nenv_keep: [NOTIFY_SOCKET]", "option env_keep: NOTIFY_SOCKET is netd's own"},
		{"command: /bin/cat\nrlimits: {files: 10}", `options.yaml:2:10: option rlimits: unknown limit "files": want as, cpu, nofile, nproc`},
		{"command: /bin/cat\nrlimits: {nofile: -1}", "option rlimits: nofile must be 0 or more, not -1"},
		{"command: /bin/cat\nrlimits: {nofile: many}", `options.yaml:2:19: option rlimits.nofile: want an integer, got "many"`},
		{"command: /bin/cat\nstderr: terminal", `options.yaml:2:9: option stderr: stderr must be log, connection or discard, not "terminal"`},
	}
	for _, tt := range tests {
		err := apitest.Provision(t, new(exec.Exec), "tcp", tt.yaml)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

// TestRelay drives the relay both ways with the fake loop: what the client
// sends is written to the child's connection, what the child's connection
// delivers is written to the client, and half-closes are carried.
func TestRelay(t *testing.T) {
	e, _ := newExec(t, "tcp", "command: /bin/cat")
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l)
	if e.Live() != 1 {
		t.Fatalf("Live = %d", e.Live())
	}
	s.client.FeedSplit([]byte("hello, child\n"))
	if got := s.child.WrittenString(); got != "hello, child\n" {
		t.Fatalf("child's stdin got %q", got)
	}
	s.child.FeedString("hello, client\n")
	if got := s.client.WrittenString(); got != "hello, client\n" {
		t.Fatalf("client got %q", got)
	}
	s.client.FeedEOF()
	if !s.child.WriteClosed() || s.client.Closing() {
		t.Fatalf("client half-close: child WriteClosed %v, client Closing %v", s.child.WriteClosed(), s.client.Closing())
	}
	s.child.FeedString("bye\n")
	s.child.FeedEOF()
	if !s.client.Closed() || s.client.Aborted() || s.client.WrittenString() != "hello, client\nbye\n" {
		t.Fatalf("client Closed %v Aborted %v Written %q", s.client.Closed(), s.client.Aborted(), s.client.WrittenString())
	}
	// The fake closed the child's socket with its connection: cat reads
	// end-of-file and exits; the watch reaps it.
	s.reap(t, l)
	if e.Live() != 0 || len(l.Watched()) != 0 {
		t.Fatalf("after the reap: Live %d, watched %v", e.Live(), l.Watched())
	}
}

func TestChildExitClosesTheClientAfterItsOutput(t *testing.T) {
	e, logger := newExec(t, "tcp", "command: /bin/sh\nargs: [-c, 'exit 3']")
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l, apitest.WithWritable(2))
	s.reap(t, l) // exited: its output may still be on its way
	if s.client.Closing() {
		t.Fatal("client closed before the child's output ended")
	}
	s.child.FeedString("result")
	s.child.FeedEOF()
	if s.client.Closed() || !s.client.Closing() {
		t.Fatal("client must be closing, with its output still queued")
	}
	s.client.Drain(-1)
	if !s.client.Closed() || s.client.Aborted() || s.client.WrittenString() != "result" {
		t.Fatalf("client Closed %v Aborted %v Written %q", s.client.Closed(), s.client.Aborted(), s.client.WrittenString())
	}
	if got := logger.Find(hclog.Debug, "child exited"); len(got) != 1 {
		t.Fatalf("exit log: %v", got)
	} else if st, _ := got[0].Arg("status"); st != "exit status 3" {
		t.Errorf("status = %v", st)
	}
}

func TestBackpressureBothWays(t *testing.T) {
	e, _ := newExec(t, "tcp", "command: /bin/cat")
	l := apitest.NewLoop(apitest.WithT(t))
	chunk := make([]byte, 64<<10)
	s := accept(t, e, l, apitest.WithWritable(0))
	s.child.SetWritable(0)
	for i := 0; i < 6; i++ {
		s.client.Feed(chunk)
		s.child.Feed(chunk)
	}
	if !s.client.Paused() || !s.child.Paused() {
		t.Fatalf("client paused %v, child paused %v with %d and %d bytes queued", s.client.Paused(), s.child.Paused(), s.child.Buffered(), s.client.Buffered())
	}
	if s.child.Buffered() > exec.HighWater+len(chunk) || s.client.Buffered() > exec.HighWater+len(chunk) {
		t.Fatalf("queued %d and %d, bound %d", s.child.Buffered(), s.client.Buffered(), exec.HighWater)
	}
	s.child.Drain(-1)
	s.client.Drain(-1)
	s.child.Drain(-1)
	s.client.Drain(-1)
	if len(s.child.Written()) != 6*len(chunk) || len(s.client.Written()) != 6*len(chunk) {
		t.Fatalf("child got %d, client got %d, want %d each", len(s.child.Written()), len(s.client.Written()), 6*len(chunk))
	}
	s.client.Terminate(api.ReasonError, nil)
	s.reap(t, l)
}

func TestEnvironment(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify") // netd's, not the child's
	t.Setenv("NETD_EXEC_TEST_INHERITED", "yes")
	t.Setenv("NETD_EXEC_TEST_SECRET", "s3cret")
	t.Setenv("NETD_EXEC_TEST_KEPT", "kept")
	out := filepath.Join(t.TempDir(), "env")
	e, _ := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'env > "$0"', `+out+`]
env_keep: [NETD_EXEC_TEST_KEPT, NETD_EXEC_TEST_INHERITED, NETD_EXEC_TEST_UNSET, TCPLOCALPORT]
env: {GREETING: hello, NETD_EXEC_TEST_INHERITED: overridden, TCPREMOTEIP: spoofed}`)
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l,
		apitest.WithRemoteAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 40123}),
		apitest.WithLocalAddr(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7000}))
	s.reap(t, l)
	env := readEnv(t, out)
	want := map[string]string{
		"PROTO": "TCP", "TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "40123",
		"TCPLOCALIP": "2001:db8::1", "TCPLOCALPORT": "7000",
		"GREETING": "hello", "NETD_EXEC_TEST_INHERITED": "overridden",
		"NETD_EXEC_TEST_KEPT": "kept", "PATH": exec.DefaultPath,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	// Nothing else of netd's environment: no secret, no HOME, no
	// NOTIFY_SOCKET. (sh itself adds PWD, and may add SHLVL and _.)
	for k := range env {
		if _, ok := want[k]; !ok && k != "PWD" && k != "SHLVL" && k != "_" {
			t.Errorf("the child has %s=%q, which nobody gave it", k, env[k])
		}
	}

	// env or env_keep may give PATH.
	t.Setenv("PATH", "/netd/kept:"+os.Getenv("PATH"))
	for _, opt := range []string{"env_keep: [PATH]", "env: {PATH: \"/netd/kept:/usr/bin:/bin\"}"} {
		e, _ = newExec(t, "tcp", "command: /bin/sh\nargs: [-c, 'env > \"$0\"', "+out+"]\n"+opt)
		s = accept(t, e, l)
		s.reap(t, l)
		if got := readEnv(t, out)["PATH"]; !strings.HasPrefix(got, "/netd/kept") {
			t.Errorf("%s: PATH=%q", opt, got)
		}
		s.client.Terminate(api.ReasonError, nil)
	}

	// On a unix listener there is no TCP peer.
	e, _ = newExec(t, "unix", `command: /bin/sh
args: [-c, 'env > "$0"', `+out+`]`)
	s = accept(t, e, l, apitest.WithRemoteAddr(&net.UnixAddr{Net: "unix"}),
		apitest.WithLocalAddr(&net.UnixAddr{Name: "/run/svc.sock", Net: "unix"}))
	s.reap(t, l)
	env = readEnv(t, out)
	if env["PROTO"] != "UNIX" || env["UNIXLOCALPATH"] != "/run/svc.sock" {
		t.Errorf("unix: PROTO=%q UNIXLOCALPATH=%q", env["PROTO"], env["UNIXLOCALPATH"])
	}
	if _, ok := env["TCPREMOTEIP"]; ok {
		t.Error("unix: TCPREMOTEIP set")
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestInstances(t *testing.T) {
	e, logger := newExec(t, "tcp", "command: /bin/cat\ninstances: 2")
	l := apitest.NewLoop(apitest.WithT(t))
	a := accept(t, e, l)
	b := accept(t, e, l)
	third := apitest.NewConn(e, apitest.WithT(t), apitest.WithLoop(l))
	if !third.Closed() || third.Reason() != api.ReasonOverLimit || !errors.Is(third.Err(), exec.ErrOverInstances) {
		t.Fatalf("third client: Closed %v Reason %q Err %v", third.Closed(), third.Reason(), third.Err())
	}
	if len(l.Attached()) != 2 || e.Live() != 2 {
		t.Fatalf("attached %d, live %d", len(l.Attached()), e.Live())
	}
	if len(logger.Find(hclog.Warn, "instances limit")) != 1 {
		t.Errorf("log:\n%s", logger)
	}
	// A child that has exited frees its instance once reaped.
	a.client.FeedEOF()
	a.child.FeedEOF()
	a.reap(t, l)
	c := accept(t, e, l)
	if e.Live() != 2 {
		t.Fatalf("live %d", e.Live())
	}
	for _, s := range []session{b, c} {
		s.client.Terminate(api.ReasonError, nil)
		s.reap(t, l)
	}
}

func TestClientResetKillsTheChild(t *testing.T) {
	// A child that ignores SIGTERM: a reset sends SIGKILL at once.
	e, logger := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'trap "" TERM; while :; do sleep 1; done']`)
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l)
	start := time.Now()
	s.client.Terminate(api.ReasonError, errors.New("connection reset by peer"))
	if !s.child.Closed() {
		t.Fatal("the child's connection outlived its client")
	}
	s.reap(t, l)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the child took %v to die", d)
	}
	if got := logger.Find(hclog.Debug, "child exited"); len(got) != 1 {
		t.Fatalf("exit log: %v", got)
	} else if st, _ := got[0].Arg("status"); st != "signal: killed" {
		t.Errorf("status = %v", st)
	}
}

func TestClientGoneWhileTheChildWritesGetsTermThenKill(t *testing.T) {
	exec.SetKillGrace(t, 100*time.Millisecond)
	ready := filepath.Join(t.TempDir(), "ready")
	e, logger := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'trap "" TERM PIPE; : > "$0"; while :; do echo y; sleep 0.01; done', `+ready+`]`)
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l)
	waitFile(t, ready) // SIGTERM before the trap is set would end it
	s.child.FeedString("y\ny\n")
	s.client.Terminate(api.ReasonIdleTimeout, nil)
	s.reap(t, l) // SIGTERM is ignored; SIGKILL follows after the kill grace
	if got := logger.Find(hclog.Debug, "child exited"); len(got) != 1 {
		t.Fatalf("exit log: %v", got)
	} else if st, _ := got[0].Arg("status"); st != "signal: killed" {
		t.Errorf("status = %v", st)
	}

	// A child that honours SIGTERM ends with it.
	e, logger = newExec(t, "tcp", "command: /bin/sh\nargs: [-c, 'while :; do sleep 1; done']")
	s = accept(t, e, l)
	s.client.Terminate(api.ReasonClient, nil)
	s.reap(t, l)
	if got := logger.Find(hclog.Debug, "child exited"); len(got) != 1 {
		t.Fatalf("exit log: %v", got)
	} else if st, _ := got[0].Arg("status"); st != "signal: terminated" {
		t.Errorf("status = %v", st)
	}
}

func TestSpawnFailureLeavesNothing(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, logger := newExec(t, "tcp", "command: "+bad)
	l := apitest.NewLoop(apitest.WithT(t))
	before := openFDs(t)
	for i := 0; i < 20; i++ {
		c := apitest.NewConn(e, apitest.WithT(t), apitest.WithLoop(l))
		if !c.Closed() || c.Reason() != api.ReasonError || c.Err() == nil {
			t.Fatalf("Closed %v Reason %q Err %v", c.Closed(), c.Reason(), c.Err())
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors %d before, %d after", before, after)
	}
	if e.Live() != 0 || len(l.Attached()) != 0 || len(l.Watched()) != 0 {
		t.Errorf("Live %d Attached %d Watched %d", e.Live(), len(l.Attached()), len(l.Watched()))
	}
	if n := len(logger.Find(hclog.Error, "cannot start")); n != 1 {
		t.Errorf("%d errors logged for 20 failures in a burst, want 1 (rate-limited)", n)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestStopKillsAndReapsWhatIsLeft(t *testing.T) {
	e, _ := newExec(t, "tcp", `command: /bin/sh
args: [-c, 'trap "" TERM HUP; exec >&-; sleep 100']`)
	l := apitest.NewLoop(apitest.WithT(t))
	var pids []int
	for i := 0; i < 3; i++ {
		s := accept(t, e, l)
		pids = append(pids, pidOf(t, s.pidfd))
		// The child closed its output and the client left cleanly: the
		// child is left to finish, and Stop ends it.
		s.child.FeedEOF()
		s.client.FeedEOF()
	}
	if e.Live() != 3 {
		t.Fatalf("Live %d", e.Live())
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if e.Live() != 0 {
		t.Fatalf("Live %d after Stop", e.Live())
	}
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("child %d still exists (a zombie?)", pid)
		}
	}
}

// waitFile waits for a child to create path.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s not created within 10s", path)
}

// pidOf reads the pid a pidfd refers to from /proc.
func pidOf(t *testing.T, pidfd int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		t.Skip("no /proc/self/fdinfo:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil && pid > 0 {
				return pid
			}
		}
	}
	t.Fatalf("no Pid in fdinfo of pidfd %d:\n%s", pidfd, b)
	return 0
}

// TestNoGoroutinePerChild: starting, relaying and reaping children costs
// no goroutine: os/exec is given *os.File for stdin, stdout and stderr, so
// it starts no copier, and the reap is the loop's watch of a pidfd.
func TestNoGoroutinePerChild(t *testing.T) {
	e, _ := newExec(t, "tcp", "command: /bin/cat")
	l := apitest.NewLoop(apitest.WithT(t))
	before := runtime.NumGoroutine()
	var ss []session
	for i := 0; i < 50; i++ {
		s := accept(t, e, l)
		s.client.FeedString("x")
		ss = append(ss, s)
	}
	if during := runtime.NumGoroutine(); during > before+5 {
		t.Errorf("%d goroutines with 50 children, %d before", during, before)
	}
	for _, s := range ss {
		s.client.FeedEOF()
		s.child.FeedEOF()
		s.reap(t, l)
	}
	if e.Live() != 0 {
		t.Errorf("Live %d", e.Live())
	}
}

// TestDrain: when the daemon drains, the loop closes the client once it
// is quiet (exec has no OnDrain of its own), and the child is ended.
func TestDrain(t *testing.T) {
	e, _ := newExec(t, "tcp", "command: /bin/cat")
	l := apitest.NewLoop(apitest.WithT(t))
	s := accept(t, e, l)
	s.client.FeedString("last request\n")
	s.client.Shutdown()
	if !s.client.Closed() || !s.child.Closed() || s.child.WrittenString() != "last request\n" {
		t.Fatalf("client closed %v, child closed %v, child got %q", s.client.Closed(), s.child.Closed(), s.child.WrittenString())
	}
	s.reap(t, l)
	if e.Live() != 0 {
		t.Fatalf("Live %d", e.Live())
	}
}

// BenchmarkSpawn measures a connection's child: socketpair, fork/exec of
// /bin/true, pidfd, watch and attach on the loop, then the reap. The
// "loop-µs/spawn" metric is the part spent in cmd.Start, which blocks the
// loop.
// BenchmarkSpawn starts /bin/true per iteration: plainly (no cgroup,
// stderr discarded), in a cgroup of its own, with its stderr logged, and
// through the exec helper (rlimits).
func BenchmarkSpawn(b *testing.B) {
	for _, bc := range []struct {
		name, opts string
		cgroup     bool
	}{
		{"plain", "stderr: discard", false},
		{"cgroup", "stderr: discard", true},
		{"stderr-log", "", false},
		{"helper", "stderr: discard\nrlimits: {nofile: 64}", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := new(exec.Exec)
			err := e.Provision(api.Setup{Listener: "bench", Network: "tcp", Options: apitest.Options(b, "command: /bin/true\n"+bc.opts)})
			if err != nil {
				b.Fatal(err)
			}
			if !bc.cgroup {
				exec.DisableCgroups(e)
			} else if exec.Cgroups(e) == "" {
				b.Skip("no cgroups here:", exec.CgroupsWhy())
			}
			l := apitest.NewLoop(apitest.WithT(b))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nw := len(l.Watched())
				c := apitest.NewConn(e, apitest.WithT(b), apitest.WithLoop(l))
				w := l.Watched()
				fd := w[nw] // the pidfd; a stderr pipe comes after it
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				if _, err := unix.Poll(fds, 10_000); err != nil {
					b.Fatal(err)
				}
				l.Fire(fd)
				a := l.Attached()
				a[len(a)-1].FeedEOF()
				_ = c
			}
			b.StopTimer()
			if e.Live() != 0 {
				b.Fatalf("%d children left", e.Live())
			}
			_, mean := e.SpawnStats()
			b.ReportMetric(float64(mean.Nanoseconds())/1e3, "loop-µs/spawn")
		})
	}
}

// TestMetrics: children started, running, exited by result, refused over
// instances, and start failures.
func TestMetrics(t *testing.T) {
	// A client from port 1 gets a child that only a kill ends; any other
	// a cat, which exits 0 once its socket closes.
	setup, reg := apitest.NewSetup(t, "tcp", `command: /bin/sh
args: [-c, 'if [ "$TCPREMOTEPORT" = 1 ]; then exec sleep 60; fi; exec cat']
instances: 2`)
	e := new(exec.Exec)
	if err := e.Provision(setup); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return apitest.Metric(t, reg, name, labels...)
	}
	l := apitest.NewLoop(apitest.WithT(t))
	ok := accept(t, e, l)
	failing := accept(t, e, l, apitest.WithRemoteAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}))
	apitest.NewConn(e, apitest.WithT(t), apitest.WithLoop(l)) // over instances
	if metric(exec.MetricStarted) != 2 || metric(exec.MetricRunning) != 2 || metric(exec.MetricOverInstances) != 1 {
		t.Fatalf("started %v running %v over %v, want 2 2 1", metric(exec.MetricStarted), metric(exec.MetricRunning), metric(exec.MetricOverInstances))
	}
	if n := metric(exec.MetricStartSeconds); n != 2 {
		t.Errorf("start time observed %v times, want 2", n)
	}
	// cat exits 0 once its socket closes, which the client's clean end
	// brings about (see TestRelay).
	ok.client.FeedEOF()
	ok.child.FeedEOF()
	ok.reap(t, l)
	failing.client.Terminate(api.ReasonError, nil) // a reset: SIGKILL
	failing.reap(t, l)
	if got := metric(exec.MetricRunning); got != 0 {
		t.Errorf("running %v after both were reaped", got)
	}
	if s, k := metric(exec.MetricExited, "result", "success"), metric(exec.MetricExited, "result", "signal"); s != 1 || k != 1 {
		t.Errorf("exited success=%v signal=%v, want 1 and 1", s, k)
	}
}
