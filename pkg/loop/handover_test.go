package loop

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHandoverDupIsCloexec: the sockets File hands over and the ones
// Listen adopts are close-on-exec, and while File runs in a tight loop no
// child started meanwhile inherits one (a dup followed by a separate
// FD_CLOEXEC would let some through).
func TestHandoverDupIsCloexec(t *testing.T) {
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "h", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("File(): fd flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
	fd, err := adoptSocket(f, "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("adopted socket: fd flags %#x, %v: want FD_CLOEXEC", flags, err)
	}

	// Children started while File dups in a loop list their descriptors:
	// none may be there that a child started before the loop lacked
	// (what the test process itself inherited without close-on-exec).
	list := func() []string {
		out, err := exec.Command("/bin/ls", "/proc/self/fd").Output()
		if err != nil {
			t.Skipf("cannot list a child's descriptors: %v", err)
		}
		return strings.Fields(string(out))
	}
	before := map[string]bool{}
	for _, s := range list() {
		before[s] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if f, err := l.File(); err == nil {
				f.Close()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		for _, s := range list() {
			if !before[s] {
				t.Fatalf("child %d inherited descriptor %s", i, s)
			}
		}
	}
}
