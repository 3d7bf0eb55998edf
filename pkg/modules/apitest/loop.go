package apitest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/address"
	"github.com/netd/netd/pkg/modules/api"
)

// maxTasks bounds one RunPending, so that tasks that keep submitting tasks
// fail the test instead of hanging it.
const maxTasks = 1 << 16

// Loop is a fake api.Loop. Submit queues a function from any goroutine; the
// test runs the queue on its own goroutine with RunPending, where the
// function runs as the loop would run it: like a callback, with every Conn
// on the loop open to it. Now is a clock the test sets.
type Loop struct {
	s settings

	mu      sync.Mutex
	tasks   []func()
	stopped bool

	// The rest belongs to the test's goroutine, which plays the loop's.
	now      time.Time
	depth    int  // callbacks and tasks in progress
	settling bool // settle is walking conns
	conns    []*Conn
	dials    []*Dial
	dialErr  func(network, address string) error
	attached []*Conn
	watchers []*watcher
}

var _ api.Loop = (*Loop)(nil)

// NewLoop returns a fake loop whose clock reads 2026-11-25 18:52:57 UTC until
// the test changes it; a fixed clock keeps tests that print time repeatable.
// WithT is the only option that concerns it.
func NewLoop(opts ...Option) *Loop {
	return &Loop{s: newSettings(opts), now: time.Date(2026, 11, 25, 18, 52, 57, 0, time.UTC)}
}

// Submit implements api.Loop: it queues f for RunPending. Safe from any
// goroutine.
func (l *Loop) Submit(f func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return api.ErrLoopClosed
	}
	l.tasks = append(l.tasks, f)
	return nil
}

// Now implements api.Loop.
func (l *Loop) Now() time.Time { return l.now }

// SetNow sets the clock that Now reads.
func (l *Loop) SetNow(t time.Time) { l.now = t }

// Advance moves the clock forward by d.
func (l *Loop) Advance(d time.Duration) { l.now = l.now.Add(d) }

// Pending returns the number of submitted functions not yet run. Safe from
// any goroutine.
func (l *Loop) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tasks)
}

// RunPending runs the submitted functions in order, including those they
// submit in turn, and returns how many ran. Call it from the test's
// goroutine, not from a callback.
func (l *Loop) RunPending() int {
	if l.depth > 0 {
		l.s.fail("RunPending called from inside a callback")
		return 0
	}
	ran := 0
	for {
		l.mu.Lock()
		tasks := l.tasks
		l.tasks = nil
		l.mu.Unlock()
		if len(tasks) == 0 {
			return ran
		}
		for _, f := range tasks {
			if f == nil {
				l.s.fail("Loop.Submit was given a nil func; the loop would crash running it")
				continue
			}
			l.run(f)
			ran++
		}
		if ran > maxTasks {
			l.s.fail("more than %d tasks in one RunPending: tasks keep submitting tasks", maxTasks)
			return ran
		}
	}
}

// Stop makes Submit fail with api.ErrLoopClosed from now on, and drops what
// is queued, as a stopped loop does.
func (l *Loop) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	l.tasks = nil
}

func (l *Loop) run(f func()) {
	l.enter()
	f()
	l.leave()
}

// enter and leave bracket a callback or a task. State changes a module makes
// inside are settled (held input delivered) once the outermost one returns,
// as the loop applies them after its callback returns.
func (l *Loop) enter() { l.depth++ }

func (l *Loop) leave() {
	l.depth--
	if l.depth == 0 {
		l.settle()
	}
}

func (l *Loop) settle() {
	if l.settling {
		return
	}
	l.settling = true
	defer func() { l.settling = false }()
	for progress := true; progress; {
		progress = false
		for _, c := range l.conns {
			if l.depth > 0 {
				return
			}
			if c.settle() {
				progress = true
			}
		}
	}
}

// onLoop reports whether the caller runs as the loop: inside a callback or
// a submitted function.
func (l *Loop) onLoop() bool { return l.depth > 0 }

// Dial is a connection a module opened with Loop.Dial: the fake Conn it
// holds, which starts connecting, and what the module asked for. The test
// completes the connect with Connect (OnAccept runs) or fails it with Fail
// (OnClose runs with api.ReasonError), then drives it as any Conn: Feed is
// what the upstream sends, Written what it received.
type Dial struct {
	*Conn
	Network string
	Address string
	Timeout time.Duration
}

// Dial implements api.Loop: it returns a fake Conn in the connecting state
// and records it for Dials. What the module writes before the test calls
// Connect queues. Like the loop, it refuses a network other than tcp,
// tcp4, tcp6 or unix, and a tcp address that address.ResolveDial refuses;
// SetDialError makes it fail as the kernel may at once.
func (l *Loop) Dial(network, address string, timeout time.Duration, h api.StreamHandler) (api.Conn, error) {
	l.loopOnly("Dial")
	if h == nil {
		return nil, errors.New("netd: Dial with a nil handler")
	}
	remote, err := dialAddr(network, address)
	if err != nil {
		return nil, err
	}
	if l.dialErr != nil {
		if err := l.dialErr(network, address); err != nil {
			return nil, err
		}
	}
	s := l.s
	s.remote = remote
	s.seed += uint64(len(l.dials)) + 1
	if _, ok := remote.(*net.UnixAddr); ok {
		s.local = &net.UnixAddr{Net: "unix"}
	} else {
		s.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000 + len(l.dials)}
	}
	c := newConn(h, s, l)
	c.connecting = true
	l.dials = append(l.dials, &Dial{Conn: c, Network: network, Address: address, Timeout: timeout})
	return c, nil
}

// dialAddr checks a Dial's address as the loop does (by package address)
// and returns it as the dialed connection's RemoteAddr.
func dialAddr(network, addr string) (net.Addr, error) {
	switch network {
	case "unix":
		if addr == "" {
			return nil, errors.New("dial unix: empty path")
		}
		return &net.UnixAddr{Name: addr, Net: "unix"}, nil
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("dial: unsupported network %q", network)
	}
	ap, err := address.ResolveDial(network, addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return net.TCPAddrFromAddrPort(ap), nil
}

// SetDialError makes Dial consult f first: when f returns an error, Dial
// returns it and dials nothing, as the loop does when the kernel refuses a
// connect at once (a unix socket nobody listens on, say). nil restores the
// default, which never fails. f sees every attempt, so it can count them.
func (l *Loop) SetDialError(f func(network, address string) error) { l.dialErr = f }

// Dials returns the connections dialed so far, in order, whatever became
// of them.
func (l *Loop) Dials() []*Dial { return append([]*Dial(nil), l.dials...) }

// Attach implements api.Loop: it checks that fd is a stream socket, as the
// loop does, wraps it in a fake Conn and runs h.OnAccept before returning.
// The fake does no I/O on fd: the test drives the Conn with Feed and Drain
// as any other. Attach takes ownership of fd, as the loop does: it is
// closed when the Conn closes.
func (l *Loop) Attach(fd int, h api.StreamHandler) (api.Conn, error) {
	l.loopOnly("Attach")
	if h == nil {
		return nil, errors.New("netd: Attach with a nil handler")
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		return nil, fmt.Errorf("attach fd %d: not a stream socket", fd)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("attach fd %d: %w", fd, err)
	}
	s := l.s
	s.local = &net.UnixAddr{Net: "unix"}
	s.remote = &net.UnixAddr{Net: "unix"}
	s.seed += uint64(len(l.attached)) + 1
	c := newConn(h, s, l)
	c.fd = fd
	l.attached = append(l.attached, c)
	c.call(cbAccept)
	return c, nil
}

// Attached returns the connections attached so far, in order.
func (l *Loop) Attached() []*Conn { return append([]*Conn(nil), l.attached...) }

type watcher struct {
	fd int
	f  func()
}

// Watch implements api.Loop: it records f for fd, which the test runs
// with Fire. The loop calls f each time fd is readable, again and again
// until the module makes it not readable or stops the watch; the fake
// runs it only when the test fires it. Watching a descriptor that is not
// open, or one watched already, fails as epoll would.
func (l *Loop) Watch(fd int, f func()) (func(), error) {
	l.loopOnly("Watch")
	if f == nil {
		return nil, errors.New("netd: Watch with a nil func")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	if l.watcher(fd) != nil {
		return nil, fmt.Errorf("epoll_ctl add fd %d: %w", fd, unix.EEXIST)
	}
	w := &watcher{fd: fd, f: f}
	l.watchers = append(l.watchers, w)
	return func() {
		l.loopOnly("the stop func of Watch")
		for i, o := range l.watchers {
			if o == w {
				l.watchers = append(l.watchers[:i], l.watchers[i+1:]...)
				return
			}
		}
	}, nil
}

// Fire runs the func watching fd, on the loop, as the loop does when fd
// turns readable, and reports whether one was watching it.
func (l *Loop) Fire(fd int) bool {
	if l.depth > 0 {
		l.s.fail("Fire called from inside a callback; the test fires watchers, not the module%s", culprit())
		return false
	}
	w := l.watcher(fd)
	if w == nil {
		return false
	}
	l.run(w.f)
	return true
}

// Watched returns the descriptors being watched, in the order Watch was
// called.
func (l *Loop) Watched() []int {
	fds := make([]int, len(l.watchers))
	for i, w := range l.watchers {
		fds[i] = w.fd
	}
	return fds
}

func (l *Loop) watcher(fd int) *watcher {
	for _, w := range l.watchers {
		if w.fd == fd {
			return w
		}
	}
	return nil
}

// track adds c to the connections the loop settles. Closed connections
// need no settling; dropping them keeps a loop that serves many short
// connections cheap to settle. They are dropped only between callbacks,
// never while settle walks the list.
func (l *Loop) track(c *Conn) {
	if l.depth == 0 && !l.settling {
		live := l.conns[:0]
		for _, o := range l.conns {
			if !o.closed {
				live = append(live, o)
			}
		}
		clear(l.conns[len(live):])
		l.conns = live
	}
	l.conns = append(l.conns, c)
}

// loopOnly checks the threading rule for the loop-only methods.
func (l *Loop) loopOnly(method string) {
	if !l.onLoop() {
		l.s.fail("Loop.%s called outside a callback or a Loop.Submit function: only the loop may call it%s", method, culprit())
	}
}
