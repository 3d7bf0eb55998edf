package main_test

// netd behind a real HAProxy: a rolling restart and an upgrade under load
// lose nothing, thanks to drain_delay (/readyz fails while netd still
// accepts, until HAProxy's health check has taken it out of rotation).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/bench"
	"github.com/netd/netd/internal/testutil"
)

// HAProxy checks /readyz every checkInter and marks a server down after
// checkFall failures; netd's drain_delay must outlast that, with room for
// a check that is slow to come back on a busy machine.
const (
	checkInter = 200 * time.Millisecond
	checkFall  = 2
	drainDelay = 1500 * time.Millisecond
	// haproxySource is the address HAProxy connects to netd from; the
	// client's (127.0.0.1) reaches netd only in the PROXY header.
	haproxySource = "127.0.0.2"
)

// netdProc is one netd behind HAProxy: its config and ports stay while
// its process is restarted or upgraded.
type netdProc struct {
	t                *testing.T
	name             string
	config, logPath  string
	port, adminPort  int
	pid              int           // the process serving now
	child            *exec.Cmd     // set while pid is our child (not after an upgrade)
	exited           chan struct{} // closed when child has been waited for
	upgradedChildren []int         // PIDs started by upgrades, for cleanup
}

var listeningPIDs = regexp.MustCompile(`netd: listening: pid=(\d+)`)

// listening returns the PIDs of the log's listening lines, in order.
func (n *netdProc) listening() []int {
	b, _ := os.ReadFile(n.logPath)
	var pids []int
	for _, m := range listeningPIDs.FindAllStringSubmatch(string(b), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

func (n *netdProc) logText() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// waitListening waits for listening line number k (1-based) and returns
// its PID.
func (n *netdProc) waitListening(k int) int {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pids := n.listening(); len(pids) >= k {
			return pids[k-1]
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: no listening line #%d within 30s:\n%s", n.name, k, n.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start runs netd serve, logging to a file: a pipe would stay open in a
// process an upgrade starts, and hide the old one's exit.
func (n *netdProc) start() {
	n.t.Helper()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	k := len(n.listening()) + 1
	cmd := exec.Command(testutil.Netd(n.t), "serve", "-c", n.config)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.child, n.exited = cmd, exited
	if pid := n.waitListening(k); pid != cmd.Process.Pid {
		n.t.Fatalf("%s: listening line from pid %d, started %d", n.name, pid, cmd.Process.Pid)
	}
	n.pid = cmd.Process.Pid
}

// stop sends SIGTERM to the serving process and waits until it is gone.
func (n *netdProc) stop() {
	n.t.Helper()
	if err := syscall.Kill(n.pid, syscall.SIGTERM); err != nil {
		n.t.Fatalf("%s: SIGTERM %d: %v", n.name, n.pid, err)
	}
	n.waitExit(30 * time.Second)
}

// waitExit waits until the serving process is gone.
func (n *netdProc) waitExit(timeout time.Duration) {
	n.t.Helper()
	if n.child != nil && n.child.Process.Pid == n.pid {
		select {
		case <-n.exited:
			if code := n.child.ProcessState.ExitCode(); code != 0 {
				n.t.Fatalf("%s: netd exited %d:\n%s", n.name, code, n.logText())
			}
		case <-time.After(timeout):
			n.t.Fatalf("%s: netd %d still running after %v:\n%s", n.name, n.pid, timeout, n.logText())
		}
		return
	}
	waitGone(n.t, n.pid, timeout)
}

// upgrade sends SIGUSR2 and waits until the new process listens and the
// old one has exited 0.
func (n *netdProc) upgrade() {
	n.t.Helper()
	k := len(n.listening()) + 1
	if err := syscall.Kill(n.pid, syscall.SIGUSR2); err != nil {
		n.t.Fatalf("%s: SIGUSR2: %v", n.name, err)
	}
	next := n.waitListening(k)
	if next == n.pid {
		n.t.Fatalf("%s: the listening line after SIGUSR2 is the old process's", n.name)
	}
	n.upgradedChildren = append(n.upgradedChildren, next)
	n.waitExit(30 * time.Second)
	n.pid, n.child = next, nil
}

// kill ends whatever this netd still runs, by PID (cleanup).
func (n *netdProc) kill() {
	if n.child != nil {
		testutil.Terminate(n.child.Process, n.exited, 10*time.Second)
	}
	for _, pid := range n.upgradedChildren {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

var acceptedSeries = regexp.MustCompile(`(?m)^netd_connections_accepted_total\{listener="echo"\} (\d+)`)

// accepted reads how many connections the serving process has accepted,
// from its /metrics; -1 when the endpoint does not answer.
func (n *netdProc) accepted() int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.adminPort))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := acceptedSeries.FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// waitInRotation waits until the serving process has accepted connections
// through HAProxy: its check has marked it up and traffic reaches it.
func (n *netdProc) waitInRotation() {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for n.accepted() < 5 {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s (pid %d): HAProxy sent it no traffic within 15s (accepted %d):\n%s", n.name, n.pid, n.accepted(), n.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHAProxyRollingRestart: HAProxy (TCP mode, send-proxy-v2, `option
// httpchk GET /readyz` on each netd's admin port) in front of three netd
// whose echo listeners require the PROXY header, under `netd bench` load
// with reconnects, verifying every byte. Each netd in turn is stopped with
// SIGTERM and started again on the same ports, and one is upgraded with
// SIGUSR2: no line is lost or mismatched, no connection fails, and netd
// logs the client's address from the header.
func TestHAProxyRollingRestart(t *testing.T) {
	haproxy := lookProgram(t, "haproxy", "haproxy")
	dir := t.TempDir()

	nodes := make([]*netdProc, 3)
	var servers strings.Builder
	for i := range nodes {
		n := &netdProc{t: t, name: fmt.Sprintf("netd%d", i), port: testutil.FreePort(t), adminPort: testutil.FreePort(t)}
		n.logPath = filepath.Join(dir, n.name+".log")
		n.config = testutil.WriteConfig(t, n.name+".yaml", fmt.Sprintf(`shutdown_timeout: 10s
drain_delay: %s
admin:
  address: 127.0.0.1:%d
listeners:
  - name: echo
    address: tcp://127.0.0.1:%d
    module: echo
    access_log: true
    proxy_protocol: {mode: require, trusted: [127.0.0.0/8]}
`, drainDelay, n.adminPort, n.port))
		nodes[i] = n
		t.Cleanup(n.kill)
		n.start()
		// HAProxy connects from haproxySource, the bench from 127.0.0.1: an
		// access line naming 127.0.0.1 proves netd took the address from
		// the PROXY header. The check goes to the admin port, plain HTTP:
		// with `port`, HAProxy 2.6 sends no PROXY header on checks unless
		// check-send-proxy is set (configuration.txt, "check-send-proxy").
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%d send-proxy-v2 source %s check port %d\n", n.name, n.port, haproxySource, n.adminPort)
	}

	front := testutil.FreePort(t)
	statsSock := filepath.Join(dir, "haproxy.sock")
	cfg := fmt.Sprintf(`global
    maxconn 4096
    stats socket %s mode 600

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    # A connect that fails anyway (it should not: drain_delay) is retried,
    # on another server.
    retries 3
    option redispatch 1

frontend fe
    bind 127.0.0.1:%d
    default_backend be

backend be
    balance roundrobin
    option httpchk GET /readyz
    default-server inter %dms fall %d rise 1
%s`, statsSock, front, checkInter.Milliseconds(), checkFall, servers.String())
	cfgPath := testutil.WriteConfig(t, "haproxy.cfg", cfg)
	var hlog bytes.Buffer
	var hlogMu sync.Mutex
	hp := exec.Command(haproxy, "-db", "-f", cfgPath)
	hp.Stdout = lockedWriter{&hlogMu, &hlog}
	hp.Stderr = hp.Stdout
	if err := hp.Start(); err != nil {
		skipPeer(t, "haproxy does not start: %v", err)
	}
	hpDone := make(chan struct{})
	go func() { _ = hp.Wait(); close(hpDone) }()
	t.Cleanup(func() { testutil.Terminate(hp.Process, hpDone, 5*time.Second) })
	haproxyLog := func() string {
		hlogMu.Lock()
		defer hlogMu.Unlock()
		return hlog.String()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rep bench.Report
	var benchErr error
	benchDone := make(chan struct{})
	go func() {
		defer close(benchDone)
		rep, benchErr = bench.Run(ctx, bench.Options{
			Address:     fmt.Sprintf("tcp://127.0.0.1:%d", front),
			Conns:       8,
			InFlight:    4,
			LineSize:    128,
			RandomLines: true,
			Reconnect:   true,
			CycleLines:  200,
			Duration:    50 * time.Second, // cancelled once the restarts are done
			Timeout:     10 * time.Second,
			Seed:        1,
		})
	}()
	for _, n := range nodes {
		n.waitInRotation()
	}

	steps := []struct {
		what string
		node int
	}{
		{"restart", 0}, {"restart", 1}, {"restart", 2}, {"upgrade", 1},
	}
	for _, s := range steps {
		n := nodes[s.node]
		old := n.pid
		switch s.what {
		case "restart":
			n.stop()
			if !strings.Contains(n.logText(), "stopping: /readyz fails; still accepting for drain_delay") {
				t.Fatalf("%s: no drain_delay phase in the log:\n%s", n.name, n.logText())
			}
			n.start()
		case "upgrade":
			n.upgrade()
		}
		n.waitInRotation()
		t.Logf("%s %s: pid %d -> %d", s.what, n.name, old, n.pid)
	}
	// Every netd serves on after the last step.
	for _, n := range nodes {
		n.waitInRotation()
	}
	cancel()
	select {
	case <-benchDone:
	case <-time.After(30 * time.Second):
		t.Fatal("bench did not end after its context was cancelled")
	}

	t.Logf("through HAProxy across %d restarts and upgrades: %d lines, %d connections, %d errors, %d connect errors, %d mismatches",
		len(steps), rep.Lines, rep.Connects, rep.Errors, rep.ConnectErrors, rep.Mismatches)
	if benchErr != nil || rep.Errors != 0 || rep.ConnectErrors != 0 || rep.Mismatches != 0 {
		var logs strings.Builder
		for _, n := range nodes {
			fmt.Fprintf(&logs, "--- %s\n%s", n.name, n.logText())
		}
		t.Fatalf("bench: %v; %d errors (first %q), %d connect errors (first %q), %d mismatches (first %q)\n%s--- haproxy\n%s",
			benchErr, rep.Errors, rep.FirstError, rep.ConnectErrors, rep.FirstConnectErr, rep.Mismatches, rep.FirstMismatch, logs.String(), haproxyLog())
	}
	// HAProxy's own count: had a netd stopped accepting while HAProxy
	// still sent it connects, those would show as connection errors and
	// retries here, even though the retries hid them from the client.
	st := haproxyStats(t, statsSock)["BACKEND"]
	t.Logf("HAProxy backend: %s connection errors, %s retries, %s redispatches, %s sessions", st["econ"], st["wretr"], st["wredis"], st["stot"])
	for _, k := range []string{"econ", "wretr", "wredis"} {
		if v := st[k]; v != "0" && v != "" {
			t.Errorf("HAProxy counted %s %s: a netd refused connects it still routed to it (drain_delay %v, check every %v, fall %d)", k, v, drainDelay, checkInter, checkFall)
		}
	}
	if rep.Connects < int64(len(steps))*10 || rep.Lines == 0 {
		t.Fatalf("too little load to prove anything: %d connections, %d lines", rep.Connects, rep.Lines)
	}
	// netd saw the bench's address, from the PROXY header, on every
	// connection it logged; without the header it would see haproxySource.
	remotes := map[string]int{}
	for _, n := range nodes {
		for _, m := range accessRemote.FindAllStringSubmatch(n.logText(), -1) {
			remotes[m[1]]++
		}
	}
	t.Logf("netd access lines by remote address: %v", remotes)
	if remotes["127.0.0.1"] == 0 || len(remotes) != 1 {
		t.Errorf("access lines by remote address %v, want all from 127.0.0.1 (the client in HAProxy's PROXY header, not HAProxy's %s)", remotes, haproxySource)
	}
}

// accessRemote finds the remote address (IP only) of an echo access line.
var accessRemote = regexp.MustCompile(`access: listener=echo remote=([^\s]+):\d+ `)

// TestUpgradeHandsOverAdmin: SIGUSR2 on a netd with an admin endpoint
// starts the new process on the same admin port (it used to fail with
// "address in use"), and the new process answers /readyz.
func TestUpgradeHandsOverAdmin(t *testing.T) {
	dir := t.TempDir()
	n := &netdProc{t: t, name: "netd", port: testutil.FreePort(t), adminPort: testutil.FreePort(t), logPath: filepath.Join(dir, "netd.log")}
	n.config = testutil.WriteConfig(t, "netd.yaml", fmt.Sprintf("admin:\n  address: 127.0.0.1:%d\nlisteners:\n  - name: echo\n    address: tcp://127.0.0.1:%d\n    module: echo\n", n.adminPort, n.port))
	t.Cleanup(n.kill)
	n.start()
	old := n.pid
	n.upgrade() // the old process has exited 0
	if strings.Contains(n.logText(), "upgrade failed") {
		t.Fatalf("upgrade failed:\n%s", n.logText())
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", n.adminPort))
	if err != nil {
		t.Fatalf("/readyz after the upgrade from %d to %d: %v", old, n.pid, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after the upgrade: %d %s", resp.StatusCode, body)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	testutil.RoundTrip(t, c, "after the upgrade\n")
	n.stop()
}

// haproxyStats asks HAProxy's stats socket for `show stat` and returns
// backend be's rows by server name (BACKEND for the backend's totals), each
// as column name -> value.
func haproxyStats(t *testing.T, sock string) map[string]map[string]string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# ") {
		t.Fatalf("haproxy show stat: unexpected answer:\n%s", b)
	}
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	out := map[string]map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < 2 || f[0] != "be" {
			continue
		}
		row := map[string]string{}
		for i, v := range f {
			if i < len(cols) {
				row[cols[i]] = v
			}
		}
		out[f[1]] = row
	}
	if out["BACKEND"] == nil {
		t.Fatalf("haproxy show stat: no BACKEND row for be:\n%s", b)
	}
	return out
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
