package main_test

import (
	"bufio"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue finds one sample in Prometheus text.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sample %s in:\n%s", series, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAdminEndpoint: counters move with known traffic, healthz and readyz
// answer, `netd reload -c FILE` reloads through the endpoint and is
// counted, and readyz turns 503 while the daemon drains.
func TestAdminEndpoint(t *testing.T) {
	port := testutil.FreePort(t)
	sock := filepath.Join(t.TempDir(), "eu.sock")
	cfg := fmt.Sprintf(`
shutdown_timeout: 5s
admin:
  address: 127.0.0.1:%d
  reload: true
listeners:
  - name: e
    address: tcp://127.0.0.1:0
    module: echo
  - name: eu
    address: unix://%s
    module: echo
  - name: p
    address: tcp://127.0.0.1:0
    module: proxy
    options: {upstreams: ["unix://%[2]s"]}
`, port, sock)
	// A module's own metric, under its module and listener labels.
	proxyConnects := fmt.Sprintf(`netd_proxy_upstream_connects_total{listener="p",module="proxy",result="ok",upstream="unix://%s"}`, sock)

	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	d := testutil.StartDaemon(t, nil, "-c", path)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	proxied := func() {
		t.Helper()
		c := d.Dial("p")
		testutil.RoundTrip(t, c, "through the proxy\n")
		c.Close()
	}
	proxied()

	for i := 0; i < 3; i++ {
		c := d.Dial("e")
		testutil.RoundTrip(t, c, "0123456789\n")
		c.Close()
	}
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, text = httpGet(t, base+"/metrics")
		if metricValue(t, text, `netd_connections_closed_total{listener="e",reason="client"}`) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := metricValue(t, text, `netd_connections_accepted_total{listener="e"}`); v != 3 {
		t.Errorf("accepted = %v, want 3", v)
	}
	if v := metricValue(t, text, `netd_bytes_received_total{listener="e"}`); v != 33 {
		t.Errorf("bytes received = %v, want 33", v)
	}
	if v := metricValue(t, text, `netd_bytes_sent_total{listener="e"}`); v != 33 {
		t.Errorf("bytes sent = %v, want 33", v)
	}
	if v := metricValue(t, text, `netd_connections_closed_total{listener="e",reason="client"}`); v != 3 {
		t.Errorf("closed by client = %v, want 3", v)
	}
	if v := metricValue(t, text, proxyConnects); v != 1 {
		t.Errorf("%s = %v, want 1", proxyConnects, v)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof without admin.pprof: %d, want 404", code)
	}

	r := testutil.RunNetd(t, nil, "reload", "-c", path)
	if r.Code != 0 {
		t.Fatalf("netd reload: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	_, text = httpGet(t, base+"/metrics")
	if v := metricValue(t, text, `netd_reloads_total{result="ok"}`); v != 1 {
		t.Errorf("reloads ok = %v, want 1", v)
	}
	// Counters survive the reload, the modules' own too.
	if v := metricValue(t, text, `netd_connections_accepted_total{listener="e"}`); v != 3 {
		t.Errorf("accepted after reload = %v, want 3", v)
	}
	proxied()
	_, text = httpGet(t, base+"/metrics")
	if v := metricValue(t, text, proxyConnects); v != 2 {
		t.Errorf("after a reload and one more client: %s = %v, want 2", proxyConnects, v)
	}

	// A client that never reads keeps the drain going: readyz says 503.
	hog := d.Dial("e")
	go func() { _, _ = hog.Write(make([]byte, 8<<20)) }()
	time.Sleep(200 * time.Millisecond)
	d.Signal(syscall.SIGTERM)
	deadline = time.Now().Add(4 * time.Second)
	code := 0
	for time.Now().Before(deadline) {
		code, _ = httpGet(t, base+"/readyz")
		if code == 503 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 503 {
		t.Fatalf("readyz while draining: %d, want 503", code)
	}
	hog.Close()
	if c := d.Wait(15 * time.Second); c != 0 {
		t.Fatalf("exit %d\n%s", c, d.Log())
	}

	// With no daemon there, netd reload fails with a message.
	r = testutil.RunNetd(t, nil, "reload", "-c", path)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no daemon answers") {
		t.Fatalf("reload with no daemon: exit %d, %q", r.Code, r.Stderr)
	}
}

// notifyListener stands in for systemd's NOTIFY_SOCKET.
func notifyListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func expectNotify(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q notification", want)
		}
	}
}

// TestSystemdNotify: READY=1 once listening, RELOADING=1 then READY=1
// around a reload, STOPPING=1 on shutdown.
func TestSystemdNotify(t *testing.T) {
	sock, msgs := notifyListener(t)
	path := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: e\n    address: tcp://127.0.0.1:0\n    module: echo\n")
	d := testutil.StartDaemon(t, []string{"NOTIFY_SOCKET=" + sock}, "-c", path)
	expectNotify(t, msgs, "READY=1")
	d.Signal(syscall.SIGHUP)
	expectNotify(t, msgs, "RELOADING=1")
	expectNotify(t, msgs, "READY=1")
	d.Signal(syscall.SIGTERM)
	expectNotify(t, msgs, "STOPPING=1")
	if c := d.Wait(15 * time.Second); c != 0 {
		t.Fatalf("exit %d", c)
	}
}

// TestSocketActivation: systemd-socket-activate passes a listening socket
// named echo; a listener on fd://echo serves it.
func TestSocketActivation(t *testing.T) {
	activate := lookProgram(t, "systemd-socket-activate", "systemd")
	port := testutil.FreePort(t)
	path := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: e\n    address: fd://echo\n    module: echo\n")
	cmd := exec.Command(activate, "-l", fmt.Sprintf("127.0.0.1:%d", port), "--fdname=echo", testutil.Netd(t), "serve", "-c", path)
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer testutil.Terminate(cmd.Process, done, testutil.StopGrace)
	// systemd-socket-activate starts netd at the first connection.
	var c net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, logs.String())
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	testutil.RoundTrip(t, c, "activated\n")
	if !strings.Contains(logs.String(), "fd://echo") && !strings.Contains(logs.String(), "e=tcp://127.0.0.1:"+strconv.Itoa(port)) {
		t.Logf("log:\n%s", logs.String())
	}
}

// nobodyAndLowPort returns the user nobody and a free port below 1024 for
// the tests of the privilege drop, which need root; it skips without them.
func nobodyAndLowPort(t *testing.T) (*user.User, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind a privileged port and drop privileges")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	for p := 999; p > 600; p-- {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return nobody, p
		}
	}
	t.Skip("no free port below 1024")
	return nil, 0
}

// TestPrivilegeDrop: as root, bind a port below 1024, then run as nobody.
func TestPrivilegeDrop(t *testing.T) {
	nobody, port := nobodyAndLowPort(t)
	cfg := fmt.Sprintf("user: nobody\nlisteners:\n  - name: low\n    address: tcp://127.0.0.1:%d\n    module: echo\n", port)
	d := testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "netd.yaml", cfg))
	testutil.RoundTrip(t, d.Dial("low"), "dropped\n")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID()))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"Uid", "Gid"} {
		want := nobody.Uid
		if key == "Gid" {
			want = nobody.Gid
		}
		m := regexp.MustCompile(`(?m)^` + key + `:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(status))
		if m == nil {
			t.Fatalf("no %s line in /proc status", key)
		}
		for _, id := range m[1:] {
			if id != want {
				t.Fatalf("%s line %q: want every id %s", key, m[0], want)
			}
		}
	}
}

// TestUpgrade: clients connect in a tight loop across SIGUSR2; none is
// refused, no echo is lost, the old process exits 0 and the new serves.
func TestUpgrade(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "u.sock")
	port := testutil.FreePort(t)
	cfg := fmt.Sprintf("shutdown_timeout: 5s\nlisteners:\n  - name: t\n    address: tcp://127.0.0.1:%d\n    module: echo\n  - name: u\n    address: unix://%s\n    module: echo\n", port, sock)
	path := testutil.WriteConfig(t, "netd.yaml", cfg)
	logPath := filepath.Join(dir, "netd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	old := exec.Command(testutil.Netd(t), "serve", "-c", path)
	old.Stdout, old.Stderr = logFile, logFile // a file, not a pipe: the new process inherits it
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	oldDone := make(chan int, 1)
	go func() { _ = old.Wait(); oldDone <- old.ProcessState.ExitCode() }()
	newPID := 0
	t.Cleanup(func() {
		_ = old.Process.Signal(syscall.SIGTERM)
		if newPID > 0 {
			_ = syscall.Kill(newPID, syscall.SIGTERM)
		}
	})
	listening := regexp.MustCompile(`listening: pid=(\d+)`)
	waitListening := func(n int) []string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(logPath)
			if m := listening.FindAllStringSubmatch(string(b), -1); len(m) >= n {
				return m[n-1]
			}
			time.Sleep(20 * time.Millisecond)
		}
		b, _ := os.ReadFile(logPath)
		t.Fatalf("no listening line #%d:\n%s", n, b)
		return nil
	}
	waitListening(1)

	var refused, lost, ok atomic.Int64
	var lossMu sync.Mutex
	var losses []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, target := range [][2]string{{"tcp", fmt.Sprintf("127.0.0.1:%d", port)}, {"unix", sock}} {
		wg.Add(1)
		go func(network, address string) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout(network, address, 2*time.Second)
				if err != nil {
					refused.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line := fmt.Sprintf("%s line %d\n", network, i)
				got := ""
				_, err = io.WriteString(c, line)
				if err == nil {
					got, err = bufio.NewReader(c).ReadString('\n')
				}
				if got != line {
					lost.Add(1)
					lossMu.Lock()
					losses = append(losses, fmt.Sprintf("%s %s: %q, %v", time.Now().Format("15:04:05.000"), network, got, err))
					lossMu.Unlock()
				} else {
					ok.Add(1)
				}
				c.Close()
			}
		}(target[0], target[1])
	}
	time.Sleep(200 * time.Millisecond)
	if err := old.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m := waitListening(2)
	newPID, _ = strconv.Atoi(m[1])
	if newPID == old.Process.Pid {
		t.Fatalf("second listening line is from the old process")
	}
	select {
	case code := <-oldDone:
		if code != 0 {
			t.Errorf("old process exit %d, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("old process did not exit after the upgrade")
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if refused.Load() != 0 || lost.Load() != 0 || ok.Load() == 0 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("across the upgrade: %d refused, %d lost %q, %d ok\n%s", refused.Load(), lost.Load(), losses, ok.Load(), b)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("unix socket file gone after the upgrade: %v", err)
	}
	// The new process serves and stops cleanly.
	if err := syscall.Kill(newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); syscall.Kill(newPID, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatal("new process still running after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	newPID = 0
	t.Logf("upgrade: %d echoes across it, 0 refused, 0 lost", ok.Load())
}
