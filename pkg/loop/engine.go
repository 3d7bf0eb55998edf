package loop

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/internal/unixsock"
	"github.com/netd/netd/pkg/modules/api"
)

// ErrEngineClosed is returned by Engine methods once Shutdown has begun.
var ErrEngineClosed = errors.New("netd: engine closed")

// Config holds what is common to all listeners of an Engine.
type Config struct {
	// Loops is the number of event loops; 0 means one per CPU.
	Loops int
	// MaxConnections caps live stream connections over all listeners;
	// 0 means no cap.
	MaxConnections int
	// ReadBufferSize is the size of each loop's read buffer; 0 means 64 KiB.
	ReadBufferSize int
	// LingerQuiet is how long a closing connection waits for the peer's
	// end-of-file, or for progress flushing its output, before it closes
	// anyway: an idle client that keeps its end open does not hold up a
	// drain for long. 0 means 1s.
	LingerQuiet time.Duration
	// LingerTimeout bounds a graceful close whatever the peer does. 0 means
	// 10s.
	LingerTimeout time.Duration
	// Logger receives the engine's logs; nil means no logs.
	Logger hclog.Logger
}

// Engine owns the event loops and the listeners. Its methods may be called
// from any goroutine; those that wait for the loops (Start, Listen,
// Replace, Shutdown) not from a loop's own, which would wait for itself.
type Engine struct {
	cfg   Config
	log   hclog.Logger
	loops []*eventLoop

	active   atomic.Int64 // live accepted connections over all listeners
	outbound atomic.Int64 // live dialed and attached connections

	mu        sync.Mutex
	listeners []*Listener
	started   bool
	draining  atomic.Bool
	// closedForAccept is set once Shutdown has taken every listener out
	// of every loop: until then a loop may still accept, and a count of
	// zero connections does not mean drained.
	closedForAccept atomic.Bool
	stopped         bool
	wg              sync.WaitGroup
	drained         chan struct{} // closed when draining and the last connection closed
	drainOnce       sync.Once
}

// New creates an engine and its loops. Nothing runs until Start.
func New(cfg Config) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.NumCPU()
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 64 << 10
	}
	if cfg.LingerQuiet <= 0 {
		cfg.LingerQuiet = time.Second
	}
	if cfg.LingerTimeout <= 0 {
		cfg.LingerTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, drained: make(chan struct{})}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newEventLoop(e, i)
		if err != nil {
			for _, prev := range e.loops {
				prev.closeFDs()
			}
			return nil, fmt.Errorf("event loop %d: %w", i, err)
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// Loops returns the number of event loops. Any goroutine.
func (e *Engine) Loops() int { return len(e.loops) }

// ActiveConnections returns the number of live stream connections. Any
// goroutine.
func (e *Engine) ActiveConnections() int64 { return e.active.Load() }

// Listen binds a listener's socket. Before Start nothing is accepted; after
// Start the listener serves at once. The listener owns spec.Module from
// this call on: it stops the module (api.Stopper) once its last connection
// has closed, and at once when Listen fails, so that a module started for
// a listener that never ran does not hold its resources for good. Any
// goroutine but a loop's.
func (e *Engine) Listen(spec ListenerSpec) (*Listener, error) {
	return e.listen(spec, nil)
}

// Replace puts a listener with new settings in old's place, for a reload:
// the new one takes new connections, old stops accepting, and old's open
// connections finish under old's settings. When the network and address
// are unchanged the socket itself is handed over, so no connect is refused
// in between and nothing is rebound. spec.Module is owned as in Listen.
// Any goroutine but a loop's.
func (e *Engine) Replace(old *Listener, spec ListenerSpec) (*Listener, error) {
	if spec.File == nil && old.spec.File == nil && spec.Network == old.spec.Network && spec.Address == old.spec.Address {
		if err := old.handSocketFile(spec); err != nil {
			e.stopUnused(spec)
			return nil, err
		}
		f, err := old.File()
		if err != nil {
			e.stopUnused(spec)
			return nil, err
		}
		defer f.Close()
		spec.File = f
	}
	l, err := e.listen(spec, old)
	if err != nil {
		return nil, err
	}
	if spec.File != nil && old.spec.Network == "unix" {
		// The socket file now belongs to the new listener.
		e.mu.Lock()
		l.sock, old.sock = old.sock, unixsock.File{}
		e.mu.Unlock()
	}
	old.Close()
	return l, nil
}

// listen makes the listener for spec, refusing a name that another open
// listener (other than replacing) has, and starts it when the engine runs.
func (e *Engine) listen(spec ListenerSpec, replacing *Listener) (*Listener, error) {
	l, err := newListener(e, spec)
	if err != nil {
		e.stopUnused(spec)
		return nil, err
	}
	e.mu.Lock()
	if e.stopped || e.draining.Load() {
		e.mu.Unlock()
		l.closeSocket()
		l.stopModule()
		return nil, ErrEngineClosed
	}
	kept := e.listeners[:0]
	for _, other := range e.listeners {
		if other.closed.Load() && other.active.Load() == 0 {
			continue // fully retired: nothing refers to it any more
		}
		kept = append(kept, other)
		if other != replacing && other.spec.Name == spec.Name && !other.closed.Load() {
			e.mu.Unlock()
			l.closeSocket()
			l.stopModule()
			return nil, fmt.Errorf("listener %q: already running", spec.Name)
		}
	}
	e.listeners = append(kept, l)
	started := e.started
	e.mu.Unlock()
	if started {
		if err := l.start(); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// stopUnused stops the module of a listener that could not be made.
func (e *Engine) stopUnused(spec ListenerSpec) {
	if s, ok := spec.Module.(api.Stopper); ok {
		if err := s.Stop(); err != nil {
			e.log.Warn("module stop failed", "listener", spec.Name, "error", err)
		}
	}
}

// Listeners returns the listeners that accept connections now. Any
// goroutine.
func (e *Engine) Listeners() []*Listener {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Listener, 0, len(e.listeners))
	for _, l := range e.listeners {
		if !l.closed.Load() {
			out = append(out, l)
		}
	}
	return out
}

// Start runs the loops and starts every listener bound so far. Any
// goroutine but a loop's.
func (e *Engine) Start() error {
	e.mu.Lock()
	if e.started || e.stopped {
		e.mu.Unlock()
		return errors.New("netd: engine already started")
	}
	e.started = true
	listeners := append([]*Listener(nil), e.listeners...)
	e.mu.Unlock()
	for _, l := range e.loops {
		e.wg.Add(1)
		l.running.Store(true)
		go func(l *eventLoop) {
			defer e.wg.Done()
			l.run()
		}(l)
	}
	for _, l := range listeners {
		if err := l.start(); err != nil {
			return err
		}
	}
	return nil
}

// Shutdown stops accepting on every listener and drains: each connection
// still reads what its peer had sent, hands it to its module, flushes its
// output and closes. Shutdown returns once every connection is closed, or
// when ctx ends, at which point the rest are aborted. The loops are stopped
// either way, and the module instances are stopped. Any goroutine but a
// loop's.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return ErrEngineClosed
	}
	e.draining.Store(true)
	listeners := append([]*Listener(nil), e.listeners...)
	started := e.started
	e.mu.Unlock()

	for _, l := range listeners {
		l.Close()
	}
	e.closedForAccept.Store(true)
	var err error
	if started {
		for _, l := range e.loops {
			_ = l.Submit(l.drainAll)
		}
		e.checkDrained()
		select {
		case <-e.drained:
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: %d connections still open: %w", e.active.Load(), ctx.Err())
			for _, l := range e.loops {
				_ = l.Submit(func() { l.abortAll() })
			}
		}
	}
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	for _, l := range e.loops {
		l.stop()
	}
	e.wg.Wait()
	for _, l := range e.loops {
		l.closeFDs()
	}
	for _, l := range listeners {
		l.stopModule()
	}
	return err
}

// Draining reports whether Shutdown has begun. Any goroutine.
func (e *Engine) Draining() bool { return e.draining.Load() }

// checkDrained closes e.drained once no listener accepts any more and no
// connection is left. Any goroutine.
func (e *Engine) checkDrained() {
	if !e.closedForAccept.Load() || e.active.Load() != 0 || e.outbound.Load() != 0 {
		return
	}
	e.drainOnce.Do(func() { close(e.drained) })
}

// pickLoop chooses the loop for a socket that only one loop serves.
func (e *Engine) pickLoop(seed int) *eventLoop {
	return e.loops[seed%len(e.loops)]
}
