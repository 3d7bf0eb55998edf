package apitest

import (
	"fmt"
	"sync"
	"time"

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
	now   time.Time
	depth int // callbacks and tasks in progress
	conns []*Conn
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

// Dial implements api.Loop. The fake does not dial yet: it fails, so that
// a module's error path runs.
func (l *Loop) Dial(network, address string, _ time.Duration, _ api.StreamHandler) (api.Conn, error) {
	return nil, fmt.Errorf("apitest: Dial %s %s: the fake loop does not dial", network, address)
}

// Attach implements api.Loop. The fake does not attach descriptors yet.
func (l *Loop) Attach(fd int, _ api.StreamHandler) (api.Conn, error) {
	return nil, fmt.Errorf("apitest: Attach fd %d: the fake loop does not attach descriptors", fd)
}

// Watch implements api.Loop. The fake does not watch descriptors yet.
func (l *Loop) Watch(fd int, _ func()) (func(), error) {
	return nil, fmt.Errorf("apitest: Watch fd %d: the fake loop does not watch descriptors", fd)
}
