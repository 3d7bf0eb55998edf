package loop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's sockets are non-blocking (accept4 and socket with
// SOCK_NONBLOCK, SetNonblock on Attach), so its reads and writes on them
// return at once, with EAGAIN when they would block. They go through
// RawSyscall, which skips the scheduler's entersyscall and exitsyscall
// that x/sys's Read, Write and Syscall make on every call. The price:
// during the call sysmon cannot hand the loop's P to another thread, and a
// stop-the-world waits for the call to return; since the loop's goroutine
// is the only one meant to run on its P, that delays at most a GC worker.
// Only non-blocking descriptors may use these.
//
// Every descriptor the loop reads and writes is a stream socket (Attach
// refuses anything else), so they are recvfrom, sendto and sendmsg rather
// than read, write and writev, for MSG_NOSIGNAL: a write to a peer that is
// gone fails with EPIPE alone, without a SIGPIPE for the runtime to field.

// rawRead reads into p as unix.Read does: n is -1 on error.
func rawRead(fd int, p []byte) (int, error) {
	var b unsafe.Pointer
	if len(p) > 0 {
		b = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(b), uintptr(len(p)), 0, 0, 0)
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
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(b), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
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

// maxIovecs bounds one writev; Linux allows 1024.
const maxIovecs = 64

// writev sends bufs in one system call, sendmsg(2) with MSG_NOSIGNAL as
// above, and returns the bytes written. x/sys's Writev allocates its iovec
// slice; this reuses the loop's.
func (l *eventLoop) writev(fd int, bufs [][]byte) (int, error) {
	iov := l.iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	l.iov = iov
	if len(iov) == 0 {
		return 0, nil
	}
	for {
		l.msg = unix.Msghdr{Iov: &iov[0]}
		l.msg.SetIovlen(len(iov))
		n, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&l.msg)), unix.MSG_NOSIGNAL)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}
