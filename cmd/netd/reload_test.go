package main_test

import (
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const reloadBefore = `
shutdown_timeout: 5s
listeners:
  - name: keep
    address: tcp://127.0.0.1:0
    module: echo
  - name: change
    address: tcp://127.0.0.1:0
    module: echo
    options:
      mode: raw
  - name: gone
    address: unix://DIR/gone.sock
    module: echo
`

const reloadAfter = `
shutdown_timeout: 5s
listeners:
  - name: keep
    address: tcp://127.0.0.1:0
    module: echo
  - name: change
    address: tcp://127.0.0.1:0
    module: echo
    options:
      mode: line
  - name: added
    address: tcp://127.0.0.1:0
    module: echo
`

// waitLog waits until the daemon's log matches re, and returns the match.
func (d *daemon) waitLog(re *regexp.Regexp, after int) []string {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		text := d.logText()
		if after < len(text) {
			if m := re.FindStringSubmatch(text[after:]); m != nil {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("log never matched %s:\n%s", re, d.logText())
	return nil
}

// TestReloadOnSIGHUP: added, removed, changed and unchanged listeners, with
// clients connected throughout; then a broken config changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, "netd.yaml", strings.ReplaceAll(reloadBefore, "DIR", dir))
	d := startDaemon(t, nil, "-c", path)
	keep, change, gone := d.dial("keep"), d.dial("change"), d.dial("gone")
	roundTrip(t, keep, "keep\n")
	roundTrip(t, change, "raw, no newline")
	roundTrip(t, gone, "gone\n")

	// Reload with port 0 listeners unchanged: they keep their sockets.
	if err := os.WriteFile(path, []byte(reloadAfter), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := len(d.logText())
	d.signal(syscall.SIGHUP)
	added := d.waitLog(regexp.MustCompile(`listener added.*address=(\S+)`), mark)
	d.waitLog(regexp.MustCompile(`reload: done`), mark)

	roundTrip(t, keep, "keep, same connection\n")
	roundTrip(t, change, "old connection, old settings: raw")
	roundTrip(t, gone, "removed listener, connection finishes\n")

	fresh := d.dial("change") // same address, new settings: line mode
	if _, err := io.WriteString(fresh, "partial"); err != nil {
		t.Fatal(err)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := fresh.Read(make([]byte, 16)); err == nil {
		t.Fatalf("new connection answered %d bytes of a partial line: still raw mode", n)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(fresh, " line\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("partial line\n"))
	if _, err := io.ReadFull(fresh, got); err != nil || string(got) != "partial line\n" {
		t.Fatalf("new connection: %q, %v", got, err)
	}

	if _, err := net.DialTimeout("unix", dir+"/gone.sock", time.Second); err == nil {
		t.Fatal("removed unix listener still accepts")
	}
	_, address, _ := strings.Cut(added[1], "://")
	c, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatalf("added listener: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, c, "added\n")

	// A broken config is logged with its position and changes nothing.
	if err := os.WriteFile(path, []byte("listeners:\n  - name: keep\n    adress: tcp://127.0.0.1:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark = len(d.logText())
	d.signal(syscall.SIGHUP)
	d.waitLog(regexp.MustCompile(`reload failed.*`+regexp.QuoteMeta(path)+`:3:5`), mark)
	roundTrip(t, keep, "keep, after a failed reload\n")
	roundTrip(t, c, "added, after a failed reload\n")

	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestReloadWatermarks: changing a listener's watermarks is a change: the
// listener is replaced on its socket, and its open connection goes on.
func TestReloadWatermarks(t *testing.T) {
	const before = "listeners:\n  - {name: w, address: tcp://127.0.0.1:0, module: echo}\n"
	const after = "listeners:\n  - {name: w, address: tcp://127.0.0.1:0, module: echo, high_watermark: 65536, low_watermark: 16384}\n"
	path := writeConfig(t, "netd.yaml", before)
	d := startDaemon(t, nil, "-c", path)
	c := d.dial("w")
	roundTrip(t, c, "before\n")
	if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := len(d.logText())
	d.signal(syscall.SIGHUP)
	d.waitLog(regexp.MustCompile(`reload: listener replaced on its socket: listener=w`), mark)
	d.waitLog(regexp.MustCompile(`reload: done.* changed=1`), mark)
	roundTrip(t, c, "after, same connection\n")
	roundTrip(t, d.dial("w"), "after, new connection\n")
}
