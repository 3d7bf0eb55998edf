package main_test

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
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
			d := startDaemon(t, nil, "-c", path)
			roundTrip(t, d.dial("local"), "before the reloads\n")
			keep := d.dial("keep")

			// Removed by reload.
			write(false)
			mark := len(d.logText())
			d.signal(syscall.SIGHUP)
			d.waitLog(regexp.MustCompile(`reload: done`), mark)
			_, statErr := os.Lstat(sock)
			if ownedByNobody {
				if !os.IsNotExist(statErr) {
					t.Fatalf("the removed listener's socket file is still there: %v", statErr)
				}
			} else {
				if statErr != nil {
					t.Fatalf("socket file: %v", statErr)
				}
				d.waitLog(regexp.MustCompile(`socket file left in place.*permission denied.*nobody.*remove the socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
			}

			// Added back by reload.
			write(true)
			mark = len(d.logText())
			d.signal(syscall.SIGHUP)
			if ownedByNobody {
				d.waitLog(regexp.MustCompile(`reload: listener added.*listener=local`), mark)
				c, err := net.DialTimeout("unix", sock, 5*time.Second)
				if err != nil {
					t.Fatalf("the listener added back does not answer: %v", err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				roundTrip(t, c, "after the reloads\n")
			} else {
				// The stale file cannot go...
				d.waitLog(regexp.MustCompile(`reload failed.*permission denied.*nobody.*remove the stale socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
				// ...and with it gone, the file cannot be made.
				if err := os.Remove(sock); err != nil {
					t.Fatal(err)
				}
				mark = len(d.logText())
				d.signal(syscall.SIGHUP)
				d.waitLog(regexp.MustCompile(`reload failed.*permission denied.*nobody.*create the socket file in directory `+regexp.QuoteMeta(sockDir)), mark)
			}
			roundTrip(t, keep, "the daemon serves on\n")
		})
	}
}
