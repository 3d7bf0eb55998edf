package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netdPackage is the daemon's main package, built by Netd.
const netdPackage = "github.com/netd/netd/cmd/netd"

// Bounds of the process harness: a build, a command run to completion, a
// daemon coming up, and the grace between SIGTERM and SIGKILL.
const (
	RunBound    = 60 * time.Second
	StartBound  = 30 * time.Second
	StopGrace   = 15 * time.Second
	buildBound  = 5 * time.Minute
	netdBinName = "netd"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Netd returns the path of a netd binary built once per test binary (with
// -race under -race) from the module's cmd/netd. A package whose tests
// call it removes the build at exit with Exit (see Exit).
func Netd(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "netd-test-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, netdBinName)
		args := []string{"build", "-o", build.path}
		if RaceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, netdPackage)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := run(cmd, buildBound); err != nil {
			build.err = fmt.Errorf("building netd: %w\n%s", err, out.String())
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Exit removes what Netd built and exits with code. A TestMain passes it
// to goleak.Cleanup, which calls it instead of os.Exit.
func Exit(code int) {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// errTimedOut says that run killed a command that outlived its bound.
var errTimedOut = errors.New("did not finish")

// run runs cmd to completion, killing it after bound.
func run(cmd *exec.Cmd, bound time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	var err error
	go func() { err = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-time.After(bound):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: %w within %v", cmd.Path, errTimedOut, bound)
	}
}

// WriteConfig writes text to a file name in a new temporary directory of
// t and returns its path.
func WriteConfig(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Result is what a finished netd command printed and returned.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// RunNetd runs netd with args (env added to the test's environment) to
// completion, bounded by RunBound.
func RunNetd(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Netd(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := run(cmd, RunBound)
	if cmd.ProcessState == nil || errors.Is(err, errTimedOut) {
		t.Fatalf("netd %v: %v", args, err)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}
}

// Terminate ends a process the test started, unless done says it has
// exited: SIGTERM, then SIGKILL after grace. It returns once done is
// closed, so done must close when the process's Wait returns.
func Terminate(p *os.Process, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}

// Daemon is a running `netd serve`, a child process of the test.
type Daemon struct {
	// Addrs maps each listener's name to its bound address
	// (scheme://...), as the daemon's "listening" line reports it.
	Addrs map[string]string

	t    testing.TB
	cmd  *exec.Cmd
	log  SyncBuffer
	done chan struct{}
	code int
}

// StartDaemon runs `netd serve args...` with env added to the test's
// environment, and waits for its "listening" line, from which it learns
// every listener's bound address. The daemon is stopped (Stop) when t
// ends.
func StartDaemon(t testing.TB, env []string, args ...string) *Daemon {
	t.Helper()
	return StartDaemonIn(t, "", env, args...)
}

// StartDaemonIn is StartDaemon in the working directory dir ("" is the
// test's).
func StartDaemonIn(t testing.TB, dir string, env []string, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, Addrs: map[string]string{}, done: make(chan struct{})}
	d.cmd = exec.Command(Netd(t), append([]string{"serve"}, args...)...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Dir = dir
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = d.log.Write(append(sc.Bytes(), '\n'))
		}
		_ = d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	t.Cleanup(d.Stop)
	var line string
	exited := false
	PollUntil(StartBound, func() bool {
		line = listeningLine(d.log.String())
		select {
		case <-d.done:
			exited = true
		default:
		}
		return line != "" || exited
	})
	switch {
	case line != "":
		parseListening(line, d.Addrs)
	case exited:
		t.Fatalf("netd exited with %d before listening:\n%s", d.code, d.Log())
	default:
		t.Fatalf("netd did not report listening within %v:\n%s", StartBound, d.Log())
	}
	return d
}

// listeningLine returns the first "listening" line of log, in either log
// format, or "".
func listeningLine(log string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, "netd: listening:") || strings.Contains(line, `"@message":"listening"`) {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}

var listeningKV = regexp.MustCompile(`([A-Za-z0-9_.-]+)=(\S+)`)

// parseListening adds to addrs every name=scheme://address pair of a
// listening line, JSON or key=value.
func parseListening(line string, addrs map[string]string) {
	var obj map[string]any
	if json.Unmarshal([]byte(line), &obj) == nil {
		for k, v := range obj {
			if s, ok := v.(string); ok && strings.Contains(s, "://") {
				addrs[k] = s
			}
		}
		return
	}
	for _, m := range listeningKV.FindAllStringSubmatch(line, -1) {
		if strings.Contains(m[2], "://") {
			addrs[m[1]] = m[2]
		}
	}
}

// Log returns everything the daemon wrote to stderr so far.
func (d *Daemon) Log() string { return d.log.String() }

// WaitLog waits until the log past its first after bytes matches re (see
// the package's WaitLog).
func (d *Daemon) WaitLog(re *regexp.Regexp, after int) []string {
	d.t.Helper()
	return WaitLog(d.t, &d.log, re, after)
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Signal sends sig to the daemon by its PID.
func (d *Daemon) Signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Done is closed once the daemon has exited; Code is then its exit code.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Code is the daemon's exit code once Done is closed, -1 before.
func (d *Daemon) Code() int {
	select {
	case <-d.done:
		return d.code
	default:
		return -1
	}
}

// Wait waits for the daemon to exit and returns its code; it fails the
// test after timeout.
func (d *Daemon) Wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(timeout):
		d.t.Fatalf("netd still running after %v:\n%s", timeout, d.Log())
		return -1
	}
}

// Stop ends the daemon if it still runs (Terminate with StopGrace).
func (d *Daemon) Stop() { Terminate(d.cmd.Process, d.done, StopGrace) }

// Dial connects to the listener name, failing the test that started the
// daemon.
func (d *Daemon) Dial(name string) net.Conn {
	d.t.Helper()
	return d.DialIn(d.t, name)
}

// DialIn is Dial for another test (a subtest): it fails and cleans up in
// t.
func (d *Daemon) DialIn(t testing.TB, name string) net.Conn {
	t.Helper()
	addr, ok := d.Addrs[name]
	if !ok {
		t.Fatalf("no listener %q in %v", name, d.Addrs)
	}
	return Dial(t, addr)
}
