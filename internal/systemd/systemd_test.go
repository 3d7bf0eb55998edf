package systemd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notifySocket binds a unix datagram socket standing in for systemd's
// and points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// recv reads one datagram, waiting at most 5s.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name, socket string
	}{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@netd-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := notifySocket(t, tc.socket)
			check := func(what string, send func() (bool, error), want string) {
				t.Helper()
				sent, err := send()
				if !sent || err != nil {
					t.Fatalf("%s: sent=%v err=%v", what, sent, err)
				}
				if got := recv(t, c); got != want {
					t.Errorf("%s sent %q, want %q", what, got, want)
				}
			}
			check("Ready", Ready, "READY=1")
			check("Stopping", Stopping, "STOPPING=1")
			check("Status", func() (bool, error) { return Status("serving 3 listeners\nsecond line") }, "STATUS=serving 3 listeners second line")
			check("ReadyAsMain", ReadyAsMain, fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
			check("Notify", func() (bool, error) { return Notify("WATCHDOG=1") }, "WATCHDOG=1")

			var before unix.Timespec
			if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
				t.Fatal(err)
			}
			if sent, err := Reloading(); !sent || err != nil {
				t.Fatalf("Reloading: sent=%v err=%v", sent, err)
			}
			msg := recv(t, c)
			lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
			if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Fatalf("Reloading sent %q, want RELOADING=1 and MONOTONIC_USEC=", msg)
			}
			usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if b := before.Nano() / 1000; usec < b || usec > b+5e6 {
				t.Errorf("MONOTONIC_USEC=%d, CLOCK_MONOTONIC was %d µs just before", usec, b)
			}
			if os.Getenv("NOTIFY_SOCKET") != tc.socket {
				t.Error("NOTIFY_SOCKET was unset; a successor process could not notify")
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	for name, f := range map[string]func() (bool, error){"Ready": Ready, "Reloading": Reloading, "Stopping": Stopping} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: sent=%v err=%v, want false, nil", name, sent, err)
		}
	}
}

func TestNotifyNobodyListening(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if sent, err := Ready(); sent || err == nil {
		t.Errorf("Ready to a missing socket: sent=%v err=%v, want false and an error", sent, err)
	}
}

func TestParseListenEnv(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    []string
		wantErr string
	}{
		{"not activated", map[string]string{}, nil, ""},
		{"another process", map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "2"}, nil, ""},
		{"no LISTEN_PID", map[string]string{"LISTEN_FDS": "2"}, nil, ""},
		{"unnamed", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2"}, []string{"unknown", "unknown"}, ""},
		{"named", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "echo:echo:udp"}, []string{"echo", "echo", "udp"}, ""},
		{"unit default", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "netd.socket"}, []string{"netd.socket"}, ""},
		{"empty name", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "echo:"}, []string{"echo", "unknown"}, ""},
		{"zero", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "0"}, []string{}, ""},
		{"bad pid", map[string]string{"LISTEN_PID": "me", "LISTEN_FDS": "1"}, nil, `bad LISTEN_PID="me"`},
		{"bad count", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "x"}, nil, `bad LISTEN_FDS="x"`},
		{"missing count", map[string]string{"LISTEN_PID": "4242"}, nil, `bad LISTEN_FDS=""`},
		{"negative count", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "-1"}, nil, `bad LISTEN_FDS="-1"`},
		{"names mismatch", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "echo"}, nil, "names 1 descriptors, LISTEN_FDS=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseListenEnv(func(k string) string { return tc.env[k] }, pid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListenersNotActivated(t *testing.T) {
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getppid()))
	t.Setenv("LISTEN_FDS", "1")
	files, err := Listeners()
	if err != nil || len(files) != 0 {
		t.Errorf("Listeners() for another process = %v, %v; want none", files, err)
	}
	if os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDS") != "" {
		t.Error("variables not unset")
	}
}

// childMarker makes the test binary, run again as a child, act the
// activated daemon in TestActivationChild.
const childMarker = "NETD_TEST_ACTIVATION_CHILD"

// TestActivation passes two listening TCP sockets to a child process at
// descriptors 3 and 4, as systemd does, and checks that the child finds
// them by name, accepts on them, and no longer has the variables.
func TestActivation(t *testing.T) {
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		ln.Close() // the child's copy keeps the socket open
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
		defer f.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestActivationChild$", "-test.v")
	// The child's PID is known only once it runs: the child sets LISTEN_PID
	// itself, from the marker, before anything else.
	cmd.Env = append(os.Environ(), childMarker+"=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=echo:raw")
	cmd.ExtraFiles = files
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i, addr := range addrs {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if want := []string{"echo", "raw"}[i] + "\n"; line != want {
			t.Errorf("socket %d answered %q, %v; want %q", i, line, err, want)
		}
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "child: ok") {
		t.Fatalf("child did not run its checks:\n%s", out.String())
	}
}

func TestActivationChild(t *testing.T) {
	if os.Getenv(childMarker) != "1" {
		t.Skip("run by TestActivation")
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	files, err := Listeners()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if os.Getenv(v) != "" {
			t.Errorf("%s still set", v)
		}
	}
	if len(files) != 2 || len(files["echo"]) != 1 || len(files["raw"]) != 1 {
		t.Fatalf("files = %v, want echo and raw", files)
	}
	for i, name := range []string{"echo", "raw"} {
		f := files[name][0]
		if f.Fd() != uintptr(3+i) || f.Name() != name {
			t.Errorf("%s: fd %d named %q, want fd %d", name, f.Fd(), f.Name(), 3+i)
		}
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: descriptor flags %#x, %v: not close-on-exec", name, flags, err)
		}
		ln, err := net.FileListener(f)
		if err != nil {
			t.Fatal(err)
		}
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("%s: accept: %v", name, err)
		}
		_, _ = c.Write([]byte(name + "\n"))
		c.Close()
		ln.Close()
		f.Close()
	}
	if !t.Failed() {
		fmt.Println("child: ok")
	}
}
