package main_test

import (
	"fmt"
	"net"
	"os"
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

// unixAfterDrop is a config that drops to nobody, with a unix listener
// in SOCKDIR when "unix" is in it.
func unixAfterDrop(withUnix bool, sockDir string) string {
	cfg := "shutdown_timeout: 5s\nuser: nobody\nlisteners:\n  - name: keep\n    address: tcp://127.0.0.1:0\n    module: echo\n"
	if withUnix {
		cfg += fmt.Sprintf("  - name: local\n    address: unix://%s/local.sock\n    module: echo\n    mode: \"0666\"\n", sockDir)
	}
	return cfg
}

// TestUnixSocketAfterPrivilegeDrop: once netd has dropped to nobody, a
// reload that removes a unix listener and one that adds it back work
// where nobody may write the socket's directory, and otherwise fail with
// a message that names the directory and the permission; the daemon
// serves on either way.
func TestUnixSocketAfterPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)

	for _, ownedByNobody := range []bool{true, false} {
		name := "directory owned by root"
		if ownedByNobody {
			name = "directory owned by nobody"
		}
		t.Run(name, func(t *testing.T) {
			// nobody must reach the config (reread on reload) and the
			// socket directory: t.TempDir and its parent are 0700.
			base := t.TempDir()
			for _, d := range []string{filepath.Dir(base), base} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			sockDir := filepath.Join(base, "run")
			if err := os.Mkdir(sockDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if ownedByNobody {
				if err := os.Chown(sockDir, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			sock := filepath.Join(sockDir, "local.sock")
			path := filepath.Join(base, "netd.yaml")
			write := func(withUnix bool) {
				t.Helper()
				if err := os.WriteFile(path, []byte(unixAfterDrop(withUnix, sockDir)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(true)
			d := testutil.StartDaemon(t, nil, "-c", path)
			testutil.RoundTrip(t, d.Dial("local"), "before the reloads\n")
			keep := d.Dial("keep")

			// Removed by reload.
			write(false)
			mark := len(d.Log())
			d.Signal(syscall.SIGHUP)
			d.WaitLog(regexp.MustCompile(`reload: done`), mark)
			_, statErr := os.Lstat(sock)
			if ownedByNobody {
				if !os.IsNotExist(statErr) {
					t.Fatalf("the removed listener's socket file is still there: %v", statErr)
				}
			} else {
				if statErr != nil {
					t.Fatalf("socket file: %v", statErr)
				}
				d.WaitLog(regexp.MustCompile(`socket file left in place.*permission denied.*nobody.*remove the socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
			}

			// Added back by reload.
			write(true)
			mark = len(d.Log())
			d.Signal(syscall.SIGHUP)
			if ownedByNobody {
				d.WaitLog(regexp.MustCompile(`reload: listener added.*listener=local`), mark)
				c, err := net.DialTimeout("unix", sock, 5*time.Second)
				if err != nil {
					t.Fatalf("the listener added back does not answer: %v", err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				testutil.RoundTrip(t, c, "after the reloads\n")
			} else {
				// The stale file cannot go...
				d.WaitLog(regexp.MustCompile(`reload failed.*permission denied.*nobody.*remove the stale socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
				// ...and with it gone, the file cannot be made.
				if err := os.Remove(sock); err != nil {
					t.Fatal(err)
				}
				mark = len(d.Log())
				d.Signal(syscall.SIGHUP)
				d.WaitLog(regexp.MustCompile(`reload failed.*permission denied.*nobody.*create the socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
			}
			testutil.RoundTrip(t, keep, "the daemon serves on\n")
		})
	}
}

// TestValidateWarnings: a valid config that is not safe by default gets
// one FILE:LINE:COL: warning: line per problem on stderr, and exit 0.
func TestValidateWarnings(t *testing.T) {
	dirWithMode := func(mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// user: nobody, so that the exec module's own warning (children that
	// would run as root, when the test runs as root) stays out of these.
	const exec = "listeners:\n  - name: sh\n    address: tcp://127.0.0.1:0\n    module: exec\n    options:\n      command: /bin/cat\n      user: nobody\n"
	const unixIn = "listeners:\n  - name: local\n    address: unix://%s/e.sock\n    module: echo\n"
	for _, tc := range []struct {
		name, config, want string
	}{
		{"exec without instances", exec, `netd.yaml:2:5: warning: listener "sh": exec without instances`},
		{"exec with instances", exec + "      instances: 8\n", ""},
		{"exec with instances 0", exec + "      instances: 0\n", ""},
		{"unix in a sticky world-writable directory", fmt.Sprintf(unixIn, dirWithMode(os.ModeSticky|0o777)), `netd.yaml:2:5: warning: listener "local": socket directory .* is world-writable: another user can take`},
		{"unix in a world-writable directory", fmt.Sprintf(unixIn, dirWithMode(0o777)), `netd.yaml:2:5: warning: listener "local": socket directory .* is world-writable without the sticky bit`},
		{"unix in a private directory", fmt.Sprintf(unixIn, dirWithMode(0o755)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.WriteConfig(t, "netd.yaml", tc.config)
			r := testutil.RunNetd(t, nil, "validate", "-c", path)
			if r.Code != 0 || !strings.Contains(r.Stdout, ": ok,") {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if tc.want == "" {
				if r.Stderr != "" {
					t.Fatalf("want no warning, got %q", r.Stderr)
				}
				return
			}
			if len(lines) != 1 || !regexp.MustCompile(regexp.QuoteMeta(path[:len(path)-len("netd.yaml")])+tc.want).MatchString(lines[0]) {
				t.Fatalf("stderr %q, want one line matching %s", r.Stderr, tc.want)
			}
		})
	}
}

// TestProxyRefusesItsOwnAddress: a proxy whose upstream is its own listen
// address (a wildcard one included, and localhost) would connect to itself
// with every connection until the descriptors ran out: validate refuses
// it, at the upstreams.
func TestProxyRefusesItsOwnAddress(t *testing.T) {
	for _, tc := range []struct{ listen, upstream string }{
		{"tcp://127.0.0.1:7400", "tcp://127.0.0.1:7400"},
		{"tcp://127.0.0.1:7400", "tcp://localhost:7400"},
		{"tcp://0.0.0.0:7400", "tcp://127.0.0.1:7400"},
		{"tcp://:7400", "tcp://[::1]:7400"},
		{"unix:///run/netd/p.sock", "unix:///run/netd/p.sock"},
	} {
		t.Run(tc.listen+" to "+tc.upstream, func(t *testing.T) {
			cfg := fmt.Sprintf("listeners:\n  - name: loop\n    address: %s\n    module: proxy\n    options:\n      upstreams: [%q, \"tcp://127.0.0.1:1\"]\n", tc.listen, tc.upstream)
			path := testutil.WriteConfig(t, "netd.yaml", cfg)
			r := testutil.RunNetd(t, nil, "validate", "-c", path)
			want := path + `:6:18: listener "loop": module proxy: option upstreams: upstreams[0]: "` + tc.upstream + `" is this listener's own address`
			if r.Code != 1 || !strings.Contains(r.Stderr, want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %s", r.Code, r.Stderr, want)
			}
		})
	}
	// Another port is no loop.
	path := testutil.WriteConfig(t, "netd.yaml", "listeners:\n  - name: front\n    address: tcp://0.0.0.0:7400\n    module: proxy\n    options:\n      upstreams: [\"tcp://127.0.0.1:7401\"]\n")
	if r := testutil.RunNetd(t, nil, "validate", "-c", path); r.Code != 0 {
		t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestServeHelpNamesLocalConfig: serve --help says that serve without -c
// reads ./netd.yaml from the working directory, and that the listening
// line names it (TestListeningNamesConfig checks the line itself).
func TestServeHelpNamesLocalConfig(t *testing.T) {
	r := testutil.RunNetd(t, nil, "serve", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "./netd.yaml from the working directory") || !strings.Contains(r.Stdout, "config=./netd.yaml") {
		t.Fatalf("exit %d, help:\n%s", r.Code, r.Stdout)
	}
}

// TestServeLogsWarnings: netd serve logs at start what netd validate warns
// about, so that an operator who never runs validate still reads it.
func TestServeLogsWarnings(t *testing.T) {
	cfg := "listeners:\n  - name: sh\n    address: tcp://127.0.0.1:0\n    module: exec\n    options:\n      command: /bin/cat\n      user: nobody\n"
	d := testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "netd.yaml", cfg))
	d.WaitLog(regexp.MustCompile(`config: allowed but unsafe.*netd\.yaml:2:5: warning: listener \\?"sh\\?": exec without instances`), 0)
}
