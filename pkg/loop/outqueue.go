package loop

// chunkSize is the unit of queued output. Small enough that a connection
// with a little pending output holds little; large enough that writev
// moves a lot per call.
const chunkSize = 16 << 10

// chunkPool recycles output chunks within one loop, so it needs no lock.
// It keeps at most maxPooled chunks; the rest go to the GC.
type chunkPool struct {
	free [][]byte
}

const maxPooled = 256

// get returns an empty chunk of chunkSize capacity.
func (p *chunkPool) get() []byte {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, chunkSize)
}

// put keeps b for reuse, unless the pool is full or b is not a chunk.
func (p *chunkPool) put(b []byte) {
	if cap(b) == chunkSize && len(p.free) < maxPooled {
		p.free = append(p.free, b[:0])
	}
}

// outQueue is a connection's output that the kernel has not taken yet:
// chunks in order, the first of them sent up to off. Appending never
// overwrites what is queued, and a short write advances by exactly what
// was written.
type outQueue struct {
	chunks [][]byte
	off    int // bytes of chunks[0] already sent
	n      int // bytes queued
}

// append copies p behind what is queued.
func (q *outQueue) append(p []byte, pool *chunkPool) {
	q.n += len(p)
	for len(p) > 0 {
		last := len(q.chunks) - 1
		if last < 0 || len(q.chunks[last]) == cap(q.chunks[last]) {
			q.chunks = append(q.chunks, pool.get())
			last++
		}
		c := q.chunks[last]
		k := copy(c[len(c):cap(c)], p)
		q.chunks[last] = c[:len(c)+k]
		p = p[k:]
	}
}

// views appends the queued bytes to dst as slices for writev; they are
// valid until the queue changes.
func (q *outQueue) views(dst [][]byte) [][]byte {
	for i, c := range q.chunks {
		if i == 0 {
			c = c[q.off:]
		}
		dst = append(dst, c)
	}
	return dst
}

// advance drops n sent bytes from the front.
func (q *outQueue) advance(n int, pool *chunkPool) {
	q.n -= n
	done := 0
	for n > 0 && done < len(q.chunks) {
		c := q.chunks[done]
		rest := len(c) - q.off
		if n < rest {
			q.off += n
			break
		}
		n -= rest
		q.off = 0
		pool.put(c)
		done++
	}
	if done > 0 {
		k := copy(q.chunks, q.chunks[done:])
		clear(q.chunks[k:])
		q.chunks = q.chunks[:k]
	}
}

// release gives every chunk back and empties the queue; it keeps its
// slice of chunks, for the next use.
func (q *outQueue) release(pool *chunkPool) {
	for i, c := range q.chunks {
		pool.put(c)
		q.chunks[i] = nil
	}
	q.chunks, q.off, q.n = q.chunks[:0], 0, 0
	if cap(q.chunks) > 16 {
		q.chunks = nil // a long queue's slice is not worth keeping
	}
}

// maxFreeQueues bounds the output queues a loop keeps for reuse.
const maxFreeQueues = 1024

// getOutQueue returns an empty output queue. Loop only.
func (l *eventLoop) getOutQueue() *outQueue {
	if n := len(l.freeOutQueues); n > 0 {
		q := l.freeOutQueues[n-1]
		l.freeOutQueues[n-1] = nil
		l.freeOutQueues = l.freeOutQueues[:n-1]
		return q
	}
	return new(outQueue)
}

// putOutQueue gives q's chunks back and keeps q for reuse. Loop only.
func (l *eventLoop) putOutQueue(q *outQueue) {
	q.release(&l.pool)
	if len(l.freeOutQueues) < maxFreeQueues {
		l.freeOutQueues = append(l.freeOutQueues, q)
	}
}
