package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/netd/netd/internal/testutil"
)

// netdBin is the daemon under test, built once by TestMain.
var netdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "netd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	netdBin = filepath.Join(dir, "netd")
	args := []string{"build", "-o", netdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building netd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a finished netd command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runNetd runs netd to completion, bounded in time.
func runNetd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(netdBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("netd %v did not finish", args)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// daemon is a running `netd serve`.
type daemon struct {
	t     *testing.T
	cmd   *exec.Cmd
	addrs map[string]string // listener name -> bound address (scheme://...)
	mu    sync.Mutex
	log   bytes.Buffer
	lines chan string
	done  chan struct{}
	code  int
}

var listeningKV = regexp.MustCompile(`([A-Za-z0-9_.-]+)=(\S+)`)

// startDaemon runs `netd serve` with args and waits for its "listening"
// line, from which it learns every listener's real address.
func startDaemon(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	return startDaemonIn(t, "", env, args...)
}

// startDaemonIn is startDaemon in the working directory dir ("" is the
// test's).
func startDaemonIn(t *testing.T, dir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, addrs: map[string]string{}, lines: make(chan string, 1024), done: make(chan struct{})}
	d.cmd = exec.Command(netdBin, append([]string{"serve"}, args...)...)
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
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			d.mu.Unlock()
			select {
			case d.lines <- line:
			default:
			}
		}
		_ = d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop() })
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line := <-d.lines:
			if strings.Contains(line, "netd: listening:") || strings.Contains(line, `"@message":"listening"`) {
				var obj map[string]any
				if json.Unmarshal([]byte(line), &obj) == nil {
					for k, v := range obj {
						if s, ok := v.(string); ok && strings.Contains(s, "://") {
							d.addrs[k] = s
						}
					}
					return d
				}
				for _, m := range listeningKV.FindAllStringSubmatch(line, -1) {
					if strings.Contains(m[2], "://") {
						d.addrs[m[1]] = m[2]
					}
				}
				return d
			}
		case <-d.done:
			t.Fatalf("netd exited with %d before listening:\n%s", d.code, d.logText())
		case <-deadline:
			t.Fatalf("netd did not report listening within 30s:\n%s", d.logText())
		}
	}
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// signal sends sig to the daemon we started, by its PID.
func (d *daemon) signal(sig syscall.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the daemon to exit and returns its code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(timeout):
		d.t.Fatalf("netd still running after %v:\n%s", timeout, d.logText())
		return -1
	}
}

// stop ends the daemon if it still runs.
func (d *daemon) stop() { terminate(d.cmd.Process, d.done, 15*time.Second) }

// terminate ends a process this test started, unless done says it has
// exited: SIGTERM, then SIGKILL after grace. It returns once it has exited.
func terminate(p *os.Process, done <-chan struct{}, grace time.Duration) {
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

// dial connects to a listener by name.
func (d *daemon) dial(name string) net.Conn {
	d.t.Helper()
	addr, ok := d.addrs[name]
	if !ok {
		d.t.Fatalf("no listener %q in %v", name, d.addrs)
	}
	return testutil.Dial(d.t, addr)
}

// writeConfig writes a config file into a temp dir and returns its path.
func writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
