package loop

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// fdHandler is whatever a loop has registered under a descriptor: an
// acceptor, a connection, a datagram socket or the wake-up eventfd.
type fdHandler interface {
	handleEvent(events uint32)
}

// registration is a handler in the nonConns table, with the generation its
// epoll registration carries (see eventLoop.gen).
type registration struct {
	h   fdHandler
	gen uint32
}

// eventLoop is one goroutine around one epoll instance. Only its own
// goroutine touches its fields, except where a field says otherwise
// (the task queue, the flags read by Submit and call, the counters).
type eventLoop struct {
	engine *Engine
	index  int // the loop's place in Engine.loops, and in per-loop slices
	epfd   int
	wakefd int // the eventfd Submit writes to wake the loop

	// conns holds the connections by descriptor, nonConns every other
	// registered descriptor (acceptors, the eventfd, datagram sockets,
	// watches). Connections are many and looked up on every event: a
	// slice of *conn, 8 bytes a slot, is cheaper to index and to scan for
	// the GC than a map or a slice of interfaces. The others are few.
	conns    []*conn
	nonConns map[int]registration

	events     []unix.EpollEvent // epoll_wait's result buffer
	readBuf    []byte            // the read buffer, shared by all the loop's connections
	iov        []unix.Iovec      // writev's iovecs, reused so that a write allocates nothing
	msg        unix.Msghdr       // sendmsg's header for iov, here so that it does not escape
	writevBufs [][]byte          // the queued output one writev sends, reused likewise
	pool       chunkPool         // output chunks, recycled within the loop
	now        time.Time         // the loop's clock, read once per iteration

	// Timers are lists ordered by last activity (see connList), so the
	// head of each is the next to expire. timeoutLists has one list per
	// idle_timeout and connect timeout in use; lingering holds connections
	// closing gracefully, draining those being drained by Shutdown.
	timeoutLists []*connList
	lingering    connList
	draining     connList

	// redeliverQueue holds connections whose kept input must be shown to
	// their module again once the current event is done (see
	// conn.redeliver).
	redeliverQueue []*conn

	// pausedAcceptors holds this loop's acceptors paused after an accept
	// error, until their backoff ends.
	pausedAcceptors []*acceptor

	// gen numbers the loop's epoll registrations. Each registration
	// carries its number in the event's data beside the descriptor, and
	// an event whose number is not that of what is registered under the
	// descriptor now is dropped. The reason: a registration outlives
	// close(2) while another process shares the file (a fork, until it
	// execs) and goes on reporting events, which must not reach the next
	// connection that reuses the descriptor number.
	gen uint32

	// spinning is set after an iteration that handled events: the next
	// one polls without blocking first (see poll).
	spinning bool

	// The task queue: any goroutine appends to tasks under tasksMu (see
	// Submit); the loop swaps it with spareTasks and runs it. wakeSent
	// saves a write to the eventfd while a wake-up is pending. running,
	// quit and done tell other goroutines whether the loop runs.
	tasksMu    sync.Mutex
	tasks      []func()
	spareTasks []func()
	wakeSent   atomic.Bool
	running    atomic.Bool
	quit       atomic.Bool
	done       chan struct{}

	ctlEvent unix.EpollEvent // epoll_ctl's argument, here so that it does not escape

	// While a connection's OnReadable runs, delivering is that connection,
	// inbound what its Inbound shows and consumed how much of it the
	// module has taken (see conn.deliver).
	delivering *conn
	inbound    []byte
	consumed   int

	// freeOutQueues recycles output queues (see conn.queue).
	freeOutQueues []*outQueue
	// tls is the loop's TLS scratch (tls.go); nil until a TLS connection
	// reads or writes.
	tls *tlsScratch

	// acceptAddr receives accept4's peer address: a buffer of the loop's,
	// so that an accept allocates nothing.
	acceptAddr    unix.RawSockaddrAny
	acceptAddrLen uint32

	// Counters for metrics: only the loop writes them, any goroutine
	// reads them (Engine.LoopStats).
	handled atomic.Uint64 // readiness events dispatched
	wakeups atomic.Uint64 // epoll_wait returns
	busy    atomic.Int64  // nanoseconds spent handling events

	// served counts the accepted connections this loop serves; other
	// loops read it to balance (see acceptor.giveWay).
	served atomic.Int64
}

// wakeHandler drains the eventfd, so that the next Submit writes it again.
type wakeHandler struct{ l *eventLoop }

func (w wakeHandler) handleEvent(uint32) {
	var b [8]byte
	_, _ = unix.Read(w.l.wakefd, b[:])
	w.l.wakeSent.Store(false)
}

// newEventLoop makes e's loop number index, with its epoll instance and
// eventfd; it runs once Engine.Start starts it.
func newEventLoop(e *Engine, index int) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &eventLoop{
		engine:   e,
		index:    index,
		epfd:     epfd,
		wakefd:   wakefd,
		events:   make([]unix.EpollEvent, 256),
		readBuf:  make([]byte, e.cfg.ReadBufferSize),
		iov:      make([]unix.Iovec, 0, maxIovecs),
		now:      time.Now(),
		done:     make(chan struct{}),
		nonConns: make(map[int]registration),
	}
	l.lingering.timeout = e.cfg.LingerQuiet
	l.draining.timeout = e.cfg.LingerQuiet
	if err := l.add(wakefd, wakeHandler{l}, unix.EPOLLIN); err != nil {
		l.closeFDs()
		return nil, err
	}
	return l, nil
}

// add registers fd for events. Loop only (or before the loop runs).
func (l *eventLoop) add(fd int, h fdHandler, events uint32) error {
	c, isConn := h.(*conn)
	if isConn && fd >= len(l.conns) {
		n := 2 * len(l.conns)
		if n < fd+1 {
			n = fd + 64
		}
		grown := make([]*conn, n)
		copy(grown, l.conns)
		l.conns = grown
	}
	l.gen++
	l.ctlEvent = unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(l.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ctlEvent); err != nil {
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	// A descriptor number is reused once closed: what was registered
	// under it before, in the nonConns table, is gone.
	if isConn {
		c.gen = l.gen
		l.conns[fd] = c
		delete(l.nonConns, fd)
	} else {
		if fd < len(l.conns) {
			l.conns[fd] = nil
		}
		l.nonConns[fd] = registration{h: h, gen: l.gen}
	}
	return nil
}

// handlerOf returns what is registered under fd; nil when nothing is.
func (l *eventLoop) handlerOf(fd int) fdHandler {
	if fd >= 0 && fd < len(l.conns) && l.conns[fd] != nil {
		return l.conns[fd]
	}
	if r, ok := l.nonConns[fd]; ok {
		return r.h
	}
	return nil
}

// modify changes the events fd is registered for, keeping its generation
// (EPOLL_CTL_MOD replaces the event's data too). Loop only.
func (l *eventLoop) modify(fd int, events uint32) error {
	l.ctlEvent = unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(l.genOf(fd))}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &l.ctlEvent)
}

// requeue registers fd anew with the same events and generation, which
// puts this loop's entry at the back of the file's wait queue (see
// acceptor.giveWay). On failure fd is out of epoll, though still in the
// tables. Loop only.
func (l *eventLoop) requeue(fd int, events uint32) error {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.ctlEvent = unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(l.genOf(fd))}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ctlEvent)
}

// genOf returns the generation fd is registered with.
func (l *eventLoop) genOf(fd int) uint32 {
	if fd >= 0 && fd < len(l.conns) && l.conns[fd] != nil {
		return l.conns[fd].gen
	}
	return l.nonConns[fd].gen
}

// removeFD unregisters fd. Loop only.
func (l *eventLoop) removeFD(fd int) {
	switch {
	case fd >= 0 && fd < len(l.conns) && l.conns[fd] != nil:
		l.conns[fd] = nil
	case l.nonConns[fd].h != nil:
		delete(l.nonConns, fd)
	default:
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Submit runs f on the loop. Any goroutine.
func (l *eventLoop) Submit(f func()) error {
	l.tasksMu.Lock()
	if l.quit.Load() && !l.running.Load() {
		l.tasksMu.Unlock()
		return api.ErrLoopClosed
	}
	l.tasks = append(l.tasks, f)
	l.tasksMu.Unlock()
	l.wake()
	return nil
}

// Now returns the loop's clock. Loop only.
func (l *eventLoop) Now() time.Time { return l.now }

// call runs f on the loop and waits for its result; before the loop runs
// (or after it stopped) it runs f directly. Any goroutine but the loop's
// own, which would wait for itself.
func (l *eventLoop) call(f func() error) error {
	if !l.running.Load() {
		return f()
	}
	res := make(chan error, 1)
	if err := l.Submit(func() { res <- f() }); err != nil {
		return f()
	}
	select {
	case err := <-res:
		return err
	case <-l.done:
		select {
		case err := <-res:
			return err
		default:
			return api.ErrLoopClosed
		}
	}
}

// wake makes the loop's epoll_wait return, with one eventfd write however
// many tasks are queued before the loop reads it. Any goroutine.
func (l *eventLoop) wake() {
	if l.wakeSent.Swap(true) {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
}

// stop asks the loop to exit after the tasks already queued. Any goroutine.
func (l *eventLoop) stop() {
	l.quit.Store(true)
	l.wake()
}

// runTasks runs the tasks queued so far, then the redeliveries they
// queued. A task queued while they run waits for the next iteration.
func (l *eventLoop) runTasks() {
	l.tasksMu.Lock()
	tasks := l.tasks
	l.tasks = l.spareTasks[:0]
	l.tasksMu.Unlock()
	for i, f := range tasks {
		l.guard(nil, f)
		tasks[i] = nil
	}
	l.spareTasks = tasks
	l.runRedeliveries()
}

// runRedeliveries shows connections their kept input again; a delivery may
// queue more, which run in the same pass.
func (l *eventLoop) runRedeliveries() {
	for i := 0; i < len(l.redeliverQueue); i++ {
		c := l.redeliverQueue[i]
		l.redeliverQueue[i] = nil
		l.guard(c, c.deliverKept)
	}
	l.redeliverQueue = l.redeliverQueue[:0]
}

// run is the loop's goroutine. The engine sets running before it starts
// the goroutine, so that call never runs a task beside a live loop.
func (l *eventLoop) run() {
	defer close(l.done)
	defer l.running.Store(false)
	for {
		l.runTasks()
		if l.quit.Load() {
			l.runTasks()
			return
		}
		n, err := 0, error(nil)
		if l.spinning {
			n = l.poll()
			if n == 0 {
				// Let anything else runnable go first, then look once
				// more before blocking.
				runtime.Gosched()
				n = l.poll()
			}
		}
		if n == 0 {
			n, err = unix.EpollWait(l.epfd, l.events, l.waitTimeout())
		}
		l.spinning = n > 0
		l.now = time.Now()
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.engine.log.Error("epoll_wait failed", "loop", l.index, "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			gen := uint32(ev.Pad)
			if fd >= 0 && fd < len(l.conns) {
				if c := l.conns[fd]; c != nil {
					if c.gen == gen {
						l.dispatch(c, ev.Events)
					}
					continue
				}
			}
			if r, ok := l.nonConns[fd]; ok && r.gen == gen {
				l.dispatch(r.h, ev.Events)
			}
		}
		l.runRedeliveries()
		l.expireTimers()
		l.wakeups.Add(1)
		l.handled.Add(uint64(max(n, 0)))
		l.busy.Add(int64(time.Since(l.now)))
	}
}

// poll returns the events ready now, without blocking. After a busy
// iteration more is often ready a moment later (in ping-pong, the peers'
// next requests). A raw system call with a zero timeout keeps the loop's
// P: the runtime neither hands it to another thread nor reschedules. Only
// when this comes back empty, and once more after a runtime.Gosched (which
// lets anything else runnable go first), does the loop block in
// EpollWait, which goes through the scheduler so that the GC and other
// goroutines can run.
func (l *eventLoop) poll() int {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		return 0 // EINTR or worse: the blocking wait reports it
	}
	return int(r)
}

// dispatch hands one event to its handler, so that a module's panic closes
// only the connection it happened on.
func (l *eventLoop) dispatch(h fdHandler, events uint32) {
	defer func() {
		if r := recover(); r != nil {
			l.recovered(h, r)
		}
	}()
	h.handleEvent(events)
}

// guard runs f with the same panic protection; c is the connection it
// concerns, if any.
func (l *eventLoop) guard(c *conn, f func()) {
	defer func() {
		if r := recover(); r != nil {
			var h fdHandler
			if c != nil {
				h = c
			}
			l.recovered(h, r)
		}
	}()
	f()
}

// recovered logs a panic that dispatch or guard caught; when it happened
// on a connection, that connection is aborted and the loop goes on.
func (l *eventLoop) recovered(h fdHandler, r any) {
	if c, ok := h.(*conn); ok {
		if c.lis.panicLog.Allow(l.now) {
			c.lis.log.Error("module panicked; connection aborted", "remote", c.remoteString(), "panic", fmt.Sprint(r))
		}
		c.closeNow(api.ReasonError, fmt.Errorf("module panic: %v", r))
		return
	}
	l.engine.log.Error("panic in event handler", "loop", l.index, "panic", fmt.Sprint(r))
}

// waitTimeout returns epoll_wait's timeout in ms: until the nearest timer,
// or -1 when none is due.
func (l *eventLoop) waitTimeout() int {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, list := range l.timeoutLists {
		consider(list.nextDeadline())
	}
	consider(l.lingering.nextDeadline())
	consider(l.draining.nextDeadline())
	for _, a := range l.pausedAcceptors {
		consider(a.resumeAt)
	}
	if next.IsZero() {
		return -1
	}
	d := time.Until(next)
	if d <= 0 {
		return 0
	}
	// Round up so the timer has fired when we wake.
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// expireTimers closes idle and lingering connections past their deadline
// and re-arms paused acceptors.
func (l *eventLoop) expireTimers() {
	now := l.now
	for _, list := range l.timeoutLists {
		for c := list.head; c != nil && !now.Before(c.deadline(list.timeout)); c = list.head {
			if list.expire != nil {
				list.expire(c)
				continue
			}
			c.lis.log.Debug("timeout", "reason", list.reason, "remote", c.remoteString())
			c.closeNow(list.reason, list.err)
		}
	}
	for c := l.draining.head; c != nil && !now.Before(c.deadline(l.draining.timeout)); c = l.draining.head {
		l.guard(c, c.finishDrain)
		if c.list == &l.draining {
			c.setList(nil) // a panic in OnDrain must not stall the loop here
		}
	}
	for c := l.lingering.head; c != nil && !now.Before(c.deadline(l.lingering.timeout)); c = l.lingering.head {
		c.endClose()
	}
	if len(l.pausedAcceptors) > 0 {
		kept := l.pausedAcceptors[:0]
		for _, a := range l.pausedAcceptors {
			if now.Before(a.resumeAt) {
				kept = append(kept, a)
				continue
			}
			a.resume()
		}
		l.pausedAcceptors = kept
	}
}

// timeoutList returns the loop's list for timeout and reason, making it on
// first use. There are few: one per idle_timeout and connect timeout in use.
func (l *eventLoop) timeoutList(timeout time.Duration, reason api.Reason, err error) *connList {
	for _, list := range l.timeoutLists {
		if list.timeout == timeout && list.reason == reason {
			return list
		}
	}
	list := &connList{timeout: timeout, reason: reason, err: err}
	l.timeoutLists = append(l.timeoutLists, list)
	return list
}

// idleList returns the loop's idle_timeout list for timeout.
func (l *eventLoop) idleList(timeout time.Duration) *connList {
	return l.timeoutList(timeout, api.ReasonIdleTimeout, nil)
}

// drainAll starts the drain of every connection on the loop. Loop only.
func (l *eventLoop) drainAll() {
	for _, c := range l.conns {
		if c != nil && !c.closed {
			l.guard(c, c.drain)
		}
	}
	l.engine.checkDrained()
}

// abortAll closes every connection at once. Loop only.
func (l *eventLoop) abortAll() {
	for _, c := range l.conns {
		if c != nil && !c.closed {
			c.closeNow(api.ReasonShutdown, errors.New("shutdown timeout"))
		}
	}
}

// closeFDs closes the epoll instance and the eventfd, once the loop has
// stopped (or never ran).
func (l *eventLoop) closeFDs() {
	if l.epfd >= 0 {
		_ = unix.Close(l.epfd)
		l.epfd = -1
	}
	if l.wakefd >= 0 {
		_ = unix.Close(l.wakefd)
		l.wakefd = -1
	}
}
