package loop

import (
	"runtime"
	"sync"
)

// Bounds of the handshake pool (see handshakePool).
const (
	// maxHandshakes bounds the handshakes in progress, each with its
	// goroutine, most of them waiting for their client.
	maxHandshakes = 4096
	// maxQueuedHandshakes bounds the connections waiting for a handshake
	// to start; over it a new one is closed.
	maxQueuedHandshakes = 4096
)

// handshakes runs every engine's TLS handshakes.
var handshakes handshakePool

// handshakePool runs TLS handshakes on goroutines, bounded two ways. A
// slot is the right to compute: there are GOMAXPROCS slots, so a burst of
// handshakes cannot take every CPU from the loops, and a handshake gives
// its slot back while it waits for its client (tlsState.Read), so that
// slow or silent clients hold no slot. A handshake's goroutine lives from
// the client's first complete record to the handshake's end, and at most
// maxHandshakes live at once. A connection that finds no slot waits in
// the queue, without a goroutine. A goroutine waiting for its slot back
// goes before the queue: handshakes under way finish first. No goroutine
// is left once no handshake is in progress.
type handshakePool struct {
	mu      sync.Mutex
	sized   bool
	free    int // slots nobody holds
	running int // handshake goroutines
	queue   []*tlsState
	waiters []chan struct{} // goroutines waiting for a slot, in order
}

// start runs st's handshake, or queues it; false when the queue is full.
func (p *handshakePool) start(st *tlsState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.sized {
		p.sized = true
		p.free = runtime.GOMAXPROCS(0)
	}
	if p.free > 0 && p.running < maxHandshakes {
		p.free--
		p.running++
		go p.run(st)
		return true
	}
	if len(p.queue) >= maxQueuedHandshakes {
		return false
	}
	p.queue = append(p.queue, st)
	return true
}

// run is a handshake's goroutine; it holds a slot when it starts.
func (p *handshakePool) run(st *tlsState) {
	st.handshake()
	p.mu.Lock()
	p.running--
	p.releaseLocked()
	p.mu.Unlock()
}

// idle gives the caller's slot back while it waits for its client.
func (p *handshakePool) idle() {
	p.mu.Lock()
	p.releaseLocked()
	p.mu.Unlock()
}

// busy takes a slot again, waiting for one.
func (p *handshakePool) busy() {
	p.mu.Lock()
	if p.free > 0 {
		p.free--
		p.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	<-ch
}

// releaseLocked hands a slot on: to a waiting goroutine, else to the
// first queued connection still open, else back to the pool.
func (p *handshakePool) releaseLocked() {
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		if len(p.waiters) == 0 {
			p.waiters = nil
		}
		close(ch)
		return
	}
	for len(p.queue) > 0 && p.running < maxHandshakes {
		st := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		st.mu.Lock()
		closed := st.closed
		st.mu.Unlock()
		if closed {
			continue
		}
		p.running++
		go p.run(st)
		return
	}
	p.free++
}
