package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
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

const fourListeners = `
log:
  level: info
shutdown_timeout: 5s
listeners:
  - name: line
    address: tcp://127.0.0.1:0
    module: echo
  - name: raw
    address: tcp://127.0.0.1:0
    module: echo
    options:
      mode: raw
  - name: sock
    address: unix://DIR/echo.sock
    module: echo
    options:
      max_line_bytes: 1024
  - name: dgram
    address: udp://127.0.0.1:0
    module: echo
`

func fourListenerConfig(t *testing.T) string {
	dir := t.TempDir()
	return testutil.WriteConfig(t, "netd.yaml", strings.ReplaceAll(fourListeners, "DIR", dir))
}

// TestServeEveryListener: line echo over TCP and unix with fragmentation,
// binary bytes and half-close; raw echo; UDP datagrams.
func TestServeEveryListener(t *testing.T) {
	d := testutil.StartDaemon(t, nil, "-c", fourListenerConfig(t))
	for _, name := range []string{"line", "sock"} {
		t.Run(name, func(t *testing.T) {
			c := d.Dial(name)
			want := "first\nsec\x00ond \xff\xfe\r\nthird\nunterminated tail"
			for i := 0; i < len(want); i += 3 {
				end := min(i+3, len(want))
				if _, err := io.WriteString(c, want[i:end]); err != nil {
					t.Fatal(err)
				}
			}
			testutil.CloseWrite(t, c)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
	t.Run("raw", func(t *testing.T) {
		c := d.Dial("raw")
		testutil.RoundTrip(t, c, "no newline needed")
	})
	t.Run("udp", func(t *testing.T) {
		c := d.Dial("dgram")
		buf := make([]byte, 100)
		for _, msg := range []string{"datagram one", "two\n"} {
			if _, err := io.WriteString(c, msg); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != msg {
				t.Fatalf("udp echo: %q, %v; want %q", buf[:n], err, msg)
			}
		}
	})
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, d.Log())
	}
}

// TestExampleConfigs runs every shipped config, YAML and HCL, with its
// ports changed to 0 and its unix sockets moved to a temp dir, and checks
// every listener answers.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	hcl, _ := filepath.Glob("../../configs/*.hcl")
	files = append(files, hcl...)
	if len(files) < 2 {
		t.Fatalf("found %d example configs, want at least netd.yaml and netd.hcl", len(files))
	}
	// Only listener addresses move to port 0; a proxy's upstreams keep
	// theirs (that proxy must then only be up).
	port := regexp.MustCompile(`(address\s*[:=]\s*"?(?:tcp|udp)[46]?://(?:\[[^\]]*\]|[^:/"\s]*)):\d+`)
	sock := regexp.MustCompile(`unix://(/[^"\s]*/)([^/"\s]+)`)
	admin := regexp.MustCompile(`(address\s*[:=]\s*"?)127\.0\.0\.1:\d+`)
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "tls.") {
			continue // needs a certificate: TestTLSExampleConfigs
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			text := port.ReplaceAllString(string(src), "$1:0")
			text = sock.ReplaceAllString(text, "unix://"+dir+"/$2")
			text = admin.ReplaceAllString(text, "${1}127.0.0.1:0")
			path := testutil.WriteConfig(t, filepath.Base(f), text)
			r := testutil.RunNetd(t, nil, "validate", "-c", path)
			if r.Code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			// validate names each listener's module: "name (address, module)".
			modules := map[string]string{}
			for _, m := range regexp.MustCompile(`([^ ,:]+) \([^,]+, ([^)]+)\)`).FindAllStringSubmatch(r.Stdout, -1) {
				modules[m[1]] = m[2]
			}
			d := testutil.StartDaemon(t, nil, "-c", path)
			delete(d.Addrs, "admin") // in the listening line, not a listener
			if len(d.Addrs) == 0 || len(d.Addrs) != len(modules) {
				t.Fatalf("%d listeners running, %d validated: %v %v", len(d.Addrs), len(modules), d.Addrs, modules)
			}
			for name, addr := range d.Addrs {
				c := d.Dial(name)
				if modules[name] != "echo" {
					continue // each other module has its own end-to-end test; here it must only be up
				}
				if strings.HasPrefix(addr, "udp") {
					if _, err := io.WriteString(c, "ping\n"); err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 64)
					n, err := c.Read(buf)
					if err != nil || string(buf[:n]) != "ping\n" {
						t.Fatalf("%s (%s): %q, %v", name, addr, buf[:n], err)
					}
					continue
				}
				testutil.RoundTrip(t, c, "ping\n")
			}
		})
	}
}

// TestYAMLAndHCLTwinsServeAlike: the shipped pair validates to the same
// listeners.
func TestYAMLAndHCLTwinsServeAlike(t *testing.T) {
	y := testutil.RunNetd(t, nil, "validate", "-c", "../../configs/netd.yaml")
	h := testutil.RunNetd(t, nil, "validate", "-c", "../../configs/netd.hcl")
	if y.Code != 0 || h.Code != 0 {
		t.Fatalf("validate: yaml %d %s, hcl %d %s", y.Code, y.Stderr, h.Code, h.Stderr)
	}
	_, ys, _ := strings.Cut(y.Stdout, ": ")
	_, hs, _ := strings.Cut(h.Stdout, ": ")
	if ys != hs {
		t.Fatalf("the twins differ:\nyaml: %s\nhcl:  %s", ys, hs)
	}
}

// TestManyClients: 200 concurrent clients with random fragmentation,
// verified byte for byte against the real daemon.
func TestManyClients(t *testing.T) {
	d := testutil.StartDaemon(t, nil, "-c", fourListenerConfig(t))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		name := "line"
		if i%4 == 0 {
			name = "sock"
		}
		c := d.Dial(name)
		wg.Add(1)
		go func(c net.Conn, seed int64) {
			defer wg.Done()
			errs <- fragmentedSession(c, seed)
		}(c, int64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// fragmentedSession sends 30 random lines in fragments of up to 64 bytes
// (testutil.Session) and checks that they all come back.
func fragmentedSession(c net.Conn, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	var want bytes.Buffer
	for i := 0; i < 30; i++ {
		line := make([]byte, rng.Intn(200))
		rng.Read(line)
		line = bytes.ReplaceAll(line, []byte{'\n'}, []byte{'.'})
		want.Write(line)
		want.WriteByte('\n')
	}
	return testutil.Session(c, want.Bytes(), want.Bytes(), seed, 64)
}

// TestSIGTERMWithDataInFlight: what clients sent before SIGTERM comes
// back, and the daemon exits 0.
func TestSIGTERMWithDataInFlight(t *testing.T) {
	d := testutil.StartDaemon(t, nil, "-c", fourListenerConfig(t))
	var conns []net.Conn
	want := bytes.Repeat([]byte("in flight line\n"), 2000)
	for i := 0; i < 8; i++ {
		c := d.Dial("line")
		testutil.RoundTrip(t, c, "warm\n")
		conns = append(conns, c)
	}
	results := make(chan error, len(conns))
	for _, c := range conns {
		go func(c net.Conn) {
			got, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(got, want) {
				err = fmt.Errorf("got %d bytes back, want %d", len(got), len(want))
			}
			results <- err
		}(c)
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
	}
	partial := d.Dial("line")
	testutil.RoundTrip(t, partial, "abc\n")
	if _, err := io.WriteString(partial, "unterminated"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	d.Signal(syscall.SIGTERM)
	if got, err := io.ReadAll(partial); err != nil || string(got) != "unterminated" {
		t.Errorf("partial line on drain: got %q, %v; want it back", got, err)
	}
	for range conns {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, d.Log())
	}
}

// TestMisbehavingClients: a line over max_line_bytes closes only its own
// connection, with a warning; a client that vanishes with echoes queued
// and one that resets do not disturb the others.
func TestMisbehavingClients(t *testing.T) {
	d := testutil.StartDaemon(t, nil, "-c", fourListenerConfig(t))
	good := d.Dial("sock")
	testutil.RoundTrip(t, good, "before\n")

	long := d.Dial("sock")
	if _, err := long.Write(append([]byte("ok\n"), bytes.Repeat([]byte("z"), 5000)...)); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(long)
	if string(got) != "ok\n" {
		t.Fatalf("over-long line: got %q, want only the complete line before it", got)
	}

	for i := 0; i < 20; i++ {
		c := d.Dial("line")
		_, _ = c.Write(bytes.Repeat([]byte("vanish\n"), 10000))
		if i%2 == 0 {
			_ = c.(*net.TCPConn).SetLinger(0) // reset instead of FIN
		}
		c.Close()
	}
	testutil.RoundTrip(t, good, "after\n")
	testutil.RoundTrip(t, d.Dial("line"), "new client\n")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.Log(), "line too long") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(d.Log(), "line too long") {
		t.Fatalf("no warning about the over-long line in the log:\n%s", d.Log())
	}
	if strings.Contains(d.Log(), "panic") || strings.Contains(d.Log(), "goroutine ") {
		t.Fatalf("the log shows a panic:\n%s", d.Log())
	}
}

// TestStartupErrors: a taken port, a missing unix directory, a missing
// file, a bad config: exit 1 with a one-line message naming what and
// where.
func TestStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name, config string
		want         []string
	}{
		{"port in use", "listeners:\n  - name: web\n    address: tcp://" + taken.Addr().String() + "\n    module: echo\n",
			[]string{`listener "web"`, "address already in use"}},
		{"missing unix dir", "listeners:\n  - name: sock\n    address: unix:///nonexistent-netd-dir/x.sock\n    module: echo\n",
			[]string{`listener "sock"`, "/nonexistent-netd-dir", "does not exist"}},
		{"unknown key", "listeners:\n  - name: a\n    address: tcp://127.0.0.1:0\n    module: echo\n    colour: red\n",
			[]string{"netd.yaml:5:5:", "colour"}},
		{"unknown user", "user: no-such-user-netd\nlisteners:\n  - name: a\n    address: tcp://127.0.0.1:0\n    module: echo\n",
			[]string{"no-such-user-netd"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.WriteConfig(t, "netd.yaml", tc.config)
			r := testutil.RunNetd(t, nil, "serve", "-c", path)
			if r.Code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.Code, r.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", r.Stderr)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		r := testutil.RunNetd(t, nil, "serve", "-c", "no/such/netd.yaml")
		if r.Code != 1 || !strings.Contains(r.Stderr, "no/such/netd.yaml") {
			t.Fatalf("exit %d, stderr %q; want 1 naming the file", r.Code, r.Stderr)
		}
	})
}

// TestStaleUnixSocket: a socket file nobody accepts on is replaced; one a
// live process serves is refused; the file is removed on exit.
func TestStaleUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	cfg := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: s\n    address: unix://"+path+"\n    module: echo\n")
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	testutil.RoundTrip(t, d.Dial("s"), "hi\n")

	r := testutil.RunNetd(t, nil, "serve", "-c", cfg)
	if r.Code != 1 || !strings.Contains(r.Stderr, "in use") {
		t.Fatalf("second daemon on a live socket: exit %d, stderr %q", r.Code, r.Stderr)
	}
	testutil.RoundTrip(t, d.Dial("s"), "still mine\n")
	d.Signal(syscall.SIGINT)
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

func TestCommands(t *testing.T) {
	t.Run("modules", func(t *testing.T) {
		r := testutil.RunNetd(t, nil, "modules")
		if r.Code != 0 || !regexp.MustCompile(`(?m)^echo\s+\S`).MatchString(r.Stdout) {
			t.Fatalf("exit %d, stdout %q", r.Code, r.Stdout)
		}
	})
	t.Run("version", func(t *testing.T) {
		r := testutil.RunNetd(t, nil, "version")
		if r.Code != 0 || !strings.Contains(r.Stdout, "netd ") || !strings.Contains(r.Stdout, "go1.") {
			t.Fatalf("exit %d, stdout %q", r.Code, r.Stdout)
		}
	})
	t.Run("validate ok", func(t *testing.T) {
		r := testutil.RunNetd(t, nil, "validate", "-c", fourListenerConfig(t))
		if r.Code != 0 || strings.Count(r.Stdout, "\n") != 1 || !strings.Contains(r.Stdout, "4 listeners") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("validate bad", func(t *testing.T) {
		path := testutil.WriteConfig(t, "bad.hcl", "listener \"a\" {\n  address = \"tcp://127.0.0.1\"\n  module = \"ecko\"\n}\n")
		r := testutil.RunNetd(t, nil, "validate", "-c", path)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1", r.Code)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+:\d+: `).MatchString(line) {
				t.Errorf("not FILE:LINE:COL: %q", line)
			}
		}
		if !strings.Contains(r.Stderr, "ecko") || !strings.Contains(r.Stderr, "port") {
			t.Errorf("stderr does not name both problems:\n%s", r.Stderr)
		}
	})
	usage := [][]string{
		{"serve", "--no-such-flag"},
		{"no-such-command"},
		{"validate"},
		{"version", "extra"},
		{"--log-level", "loud", "modules"},
	}
	for _, args := range usage {
		t.Run("usage "+strings.Join(args, " "), func(t *testing.T) {
			if r := testutil.RunNetd(t, nil, args...); r.Code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.Code, r.Stderr)
			}
		})
	}
}

// TestLogSettingsPrecedence: flag over environment over file, and JSON
// logs are one object per line. The "listening" line is at info level.
func TestLogSettingsPrecedence(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "q.sock")
	quiet := testutil.WriteConfig(t, "netd.yaml", "log:\n  level: warn\nlisteners:\n  - name: a\n    address: unix://"+sockPath+"\n    module: echo\n")
	cases := []struct {
		name     string
		env      []string
		args     []string
		wantInfo bool
	}{
		{"file says warn", nil, nil, false},
		{"env beats file", []string{"NETD_LOG_LEVEL=info"}, nil, true},
		{"flag beats env", []string{"NETD_LOG_LEVEL=info"}, []string{"--log-level", "warn"}, false},
		{"flag before the command", nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "-c", quiet}, tc.args...)
			if tc.name == "flag before the command" {
				args = []string{"--log-level=debug", "serve", "-c", quiet}
			}
			d := startDaemonOrLog(t, sockPath, tc.env, args...)
			if d.sawListening != tc.wantInfo {
				t.Fatalf("info line shown = %v, want %v\n%s", d.sawListening, tc.wantInfo, d.log)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		d := testutil.StartDaemon(t, []string{"NETD_LOG_FORMAT=json", "NETD_LOG_LEVEL=info"}, "-c", quiet)
		testutil.RoundTrip(t, d.Dial("a"), "x\n")
		d.Signal(syscall.SIGTERM)
		d.Wait(15 * time.Second)
		lines := strings.Split(strings.TrimSpace(d.Log()), "\n")
		if len(lines) < 2 {
			t.Fatalf("only %d log lines", len(lines))
		}
		for _, line := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("not a JSON object: %q", line)
			}
		}
	})
}

type quietRun struct {
	sawListening bool
	log          string
}

// startDaemonOrLog runs serve with a config whose one listener is the
// unix socket sockPath, waits until that socket answers (the "listening"
// line may be filtered out by the level under test), then stops it and
// reports whether the info-level "listening" line appeared.
func startDaemonOrLog(t *testing.T, sockPath string, env []string, args ...string) quietRun {
	t.Helper()
	cmd := exec.Command(testutil.Netd(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var errb testutil.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	up := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !up; {
		if c, err := net.Dial("unix", sockPath); err == nil {
			c.Close()
			up = true
			break
		}
		select {
		case <-done:
			t.Fatalf("netd exited early:\n%s", errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	testutil.Terminate(cmd.Process, done, testutil.StopGrace)
	if !up {
		t.Fatalf("netd never served %s:\n%s", sockPath, errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	return quietRun{sawListening: strings.Contains(errb.String(), "listening"), log: errb.String()}
}
