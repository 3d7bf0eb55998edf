package loop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's sockets are non-blocking (accept4 with SOCK_NONBLOCK, socket
// with SOCK_NONBLOCK, SetNonblock on Attach), so read(2), write(2) and
// writev(2) on them return at once, with EAGAIN when they would block. They
// go through RawSyscall, which skips the scheduler's entersyscall and
// exitsyscall (x/sys's Read and Write, and Syscall, make that pair on every
// call). The cost: during a call (a write's loopback delivery can take tens
// of microseconds) sysmon cannot hand the loop's P to another thread, and a
// stop-the-world waits for the call to return. The loop's goroutine is the
// only one meant to run on its P, so that delays at most a GC worker by as
// long. Only non-blocking descriptors may use these.

// rawRead reads into p as unix.Read does: n is -1 on error.
func rawRead(fd int, p []byte) (int, error) {
	var b unsafe.Pointer
	if len(p) > 0 {
		b = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(b), uintptr(len(p)))
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}

// rawWrite writes p as unix.Write does: n is -1 on error.
func rawWrite(fd int, p []byte) (int, error) {
	var b unsafe.Pointer
	if len(p) > 0 {
		b = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(b), uintptr(len(p)))
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}

// errnoErr returns the same error values as x/sys does for the common
// errnos, so that comparisons with unix.EAGAIN and unix.EINTR hold, and
// boxes nothing for them.
func errnoErr(e unix.Errno) error {
	switch e {
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}
