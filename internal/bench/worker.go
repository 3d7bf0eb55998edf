package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// rng is splitmix64: tiny, fast, and the same sequence for the same seed.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n), n > 0.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// printable is the alphabet of lines without RandomLines.
const printable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// worker is one connection slot: it connects, runs exchanges, and replaces
// its connection when it fails or its cycle ends.
type worker struct {
	r  *runner
	id int

	gen  rng // line lengths and contents, cycle lengths, half-close choice
	frag rng // fragment sizes (used by the writing goroutine only)

	batch []byte // the bytes of the current batch, as sent
	ends  []int  // offset just past each line's '\n' in batch
	rbuf  []byte // read buffer
	wdone chan error

	hist Histogram
	st   counters

	linesDone int64 // lines verified in this slot, for Options.Lines
	logged    bool  // a mismatch has been logged for this slot

	// per connection
	streamOff int64     // echoed bytes verified on this connection
	deadline  time.Time // the connection's current deadline
	atHard    bool      // deadline is the run's hard end
}

func newWorker(r *runner, id int) *worker {
	o := r.o
	seed := uint64(o.Seed) ^ uint64(id+1)*0x9e3779b97f4a7c15
	w := &worker{r: r, id: id}
	w.gen = rng{seed}
	w.gen.next()
	w.frag = rng{w.gen.next()}
	batchCap := (o.InFlight + 1) * o.LineSize
	w.batch = make([]byte, 0, batchCap)
	w.ends = make([]int, 0, o.InFlight)
	w.rbuf = make([]byte, min(max(batchCap+1, 4096), 64<<10))
	w.wdone = make(chan error, 1)
	return w
}

// more reports whether the slot should go on.
func (w *worker) more(now time.Time) bool {
	o := &w.r.o
	return w.r.ctx.Err() == nil && now.Before(w.r.endAt) &&
		(o.Lines == 0 || w.linesDone < int64(o.Lines))
}

func (w *worker) run() {
	const minBackoff, maxBackoff = 10 * time.Millisecond, time.Second
	backoff := minBackoff
	for w.more(time.Now()) {
		c, err := w.dial()
		if err != nil {
			if w.r.ctx.Err() != nil {
				return
			}
			w.st.connectErrors.Add(1)
			w.r.note(&w.r.firstConnErr, err.Error())
			if !w.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		w.st.connects.Add(1)
		w.st.active.Add(1)
		before := w.st.bytesVerified.Load()
		ok := w.cycle(c)
		w.st.active.Add(-1)
		if ok || w.st.bytesVerified.Load() > before {
			backoff = minBackoff
			continue
		}
		// A connection that failed without echoing anything (a server that
		// accepts and closes at once, say): back off instead of spinning.
		if !w.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// sleep waits d, or less if the run ends first; false if the run is over.
func (w *worker) sleep(d time.Duration) bool {
	if left := time.Until(w.r.endAt); left < d {
		d = left
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.r.ctx.Done():
		return false
	}
}

func (w *worker) dial() (net.Conn, error) {
	d := time.Now().Add(w.r.o.Timeout)
	if d.After(w.r.hardEnd) {
		d = w.r.hardEnd
	}
	dialer := net.Dialer{Deadline: d}
	c, err := dialer.DialContext(w.r.ctx, w.r.network, w.r.addr)
	if err != nil || w.r.o.tlsConfig == nil {
		return c, err
	}
	c.SetDeadline(d)
	tc := tls.Client(c, w.r.o.tlsConfig)
	if err := tc.HandshakeContext(w.r.ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// touch moves the connection's deadline to now+Timeout (never past the
// run's hard end), but only when less than half of Timeout is left, so that
// it costs nothing on most calls.
func (w *worker) touch(c net.Conn, now time.Time) {
	if w.atHard || (!w.deadline.IsZero() && w.deadline.Sub(now) > w.r.o.Timeout/2) {
		return
	}
	d := now.Add(w.r.o.Timeout)
	if !d.Before(w.r.hardEnd) {
		d, w.atHard = w.r.hardEnd, true
	}
	w.deadline = d
	c.SetDeadline(d)
}

// cycle runs one connection from its connect to its close. It reports
// whether the connection ended as planned (not by an error or a mismatch).
func (w *worker) cycle(c net.Conn) bool {
	// Cancellation closes the connection, which ends any read or write.
	stop := context.AfterFunc(w.r.ctx, func() { c.Close() })
	defer func() {
		stop()
		c.Close()
	}()
	w.streamOff, w.deadline, w.atHard = 0, time.Time{}, false

	o := &w.r.o
	limit := int64(math.MaxInt64)
	if o.Reconnect {
		limit = 1 + int64(w.gen.intn(o.CycleLines))
	}
	halfClose := o.HalfClose > 0 && w.gen.float() < o.HalfClose

	var sent int64
	for sent < limit && w.more(time.Now()) {
		n := min(int64(o.InFlight), limit-sent)
		if o.Lines > 0 {
			n = min(n, int64(o.Lines)-w.linesDone)
		}
		if !w.exchange(c, int(n), false) {
			return false
		}
		sent += n
	}
	if !halfClose || w.r.ctx.Err() != nil {
		return true
	}
	// A last batch of 0..InFlight lines and an unterminated tail, then
	// CloseWrite: all of it must come back, then EOF.
	n := int64(w.gen.intn(o.InFlight + 1))
	if o.Lines > 0 {
		n = max(0, min(n, int64(o.Lines)-w.linesDone))
	}
	return w.exchange(c, int(n), true)
}

// lineLen is the length of the next line, '\n' included.
func (w *worker) lineLen() int {
	if w.r.o.RandomLines {
		return 1 + w.gen.intn(w.r.o.LineSize)
	}
	return w.r.o.LineSize
}

// tailLen is the length of an unterminated tail: at least 1.
func (w *worker) tailLen() int {
	if w.r.o.LineSize <= 2 {
		return 1
	}
	if w.r.o.RandomLines {
		return 1 + w.gen.intn(w.r.o.LineSize-1)
	}
	return w.r.o.LineSize - 1
}

// fill fills p with line content: printable ASCII, or with RandomLines any
// byte but '\n'.
func (w *worker) fill(p []byte) {
	if w.r.o.RandomLines {
		i := 0
		for ; i+8 <= len(p); i += 8 {
			binary.LittleEndian.PutUint64(p[i:], w.gen.next())
		}
		if i < len(p) {
			v := w.gen.next()
			for ; i < len(p); i++ {
				p[i] = byte(v)
				v >>= 8
			}
		}
		for q := p; ; {
			j := bytes.IndexByte(q, '\n')
			if j < 0 {
				break
			}
			q[j] = 0x8a // '\n' with its high bit set: still not a newline
			q = q[j+1:]
		}
		return
	}
	for i := 0; i < len(p); {
		v := w.gen.next()
		for k := 0; k < 10 && i < len(p); k++ {
			p[i] = printable[v&63]
			v >>= 6
			i++
		}
	}
}

// write sends p, in random fragments with Fragment, and half-closes after
// it when halfClose is set.
func (w *worker) write(c net.Conn, p []byte, halfClose bool) error {
	var sent int
	var err error
	if !w.r.o.Fragment {
		sent, err = c.Write(p)
	} else {
		// Fragments of 1..k bytes, k drawn per batch, so that split points
		// fall anywhere: inside a line, just before or after its '\n'.
		k := [...]int{1, 3, 16, 100, 1500}[w.frag.intn(5)]
		for sent < len(p) && err == nil {
			n := 1 + w.frag.intn(min(k, len(p)-sent))
			n, err = c.Write(p[sent : sent+n])
			sent += n
		}
	}
	w.st.bytesSent.Add(int64(sent))
	if err == nil && halfClose {
		cw, ok := c.(interface{ CloseWrite() error })
		if !ok {
			return fmt.Errorf("%T cannot half-close", c)
		}
		err = cw.CloseWrite()
	}
	return err
}

// exchange sends a batch of n lines (and, with halfClose, an unterminated
// tail and a half-close), reads and verifies its echo, and records the
// latency of every line. It reports false when the connection must go: an
// error or a mismatch, both counted.
func (w *worker) exchange(c net.Conn, n int, halfClose bool) bool {
	buf := w.batch[:0]
	ends := w.ends[:0]
	for range n {
		l := w.lineLen()
		s := len(buf)
		buf = buf[:s+l]
		w.fill(buf[s : s+l-1])
		buf[s+l-1] = '\n'
		ends = append(ends, len(buf))
	}
	if halfClose {
		s := len(buf)
		buf = buf[:s+w.tailLen()]
		w.fill(buf[s:])
	}
	want := len(buf)

	t0 := time.Now()
	w.touch(c, t0)
	async := want > inlineWriteMax
	if async {
		go func() { w.wdone <- w.write(c, buf, halfClose) }()
	} else if err := w.write(c, buf, halfClose); err != nil {
		w.fail(err)
		return false
	}

	ok := w.verify(c, buf, ends, t0, halfClose)
	if async {
		if !ok {
			c.Close() // unblock the writer before waiting for it
		}
		if err := <-w.wdone; err != nil && ok {
			w.fail(err)
			ok = false
		}
	}
	return ok
}

// verify reads the echo of buf and compares it byte for byte.
func (w *worker) verify(c net.Conn, buf []byte, ends []int, t0 time.Time, halfClose bool) bool {
	want := len(buf)
	got, li := 0, 0
	var lines int64
	defer func() {
		w.st.lines.Add(lines)
		w.st.bytesVerified.Add(int64(got))
		w.linesDone += lines
		w.streamOff += int64(got)
	}()
	eof := false
	for got < want {
		n, err := c.Read(w.rbuf)
		now := time.Now()
		if n > 0 {
			m := min(n, want-got)
			if !bytes.Equal(w.rbuf[:m], buf[got:got+m]) {
				i := 0
				for w.rbuf[i] == buf[got+i] {
					i++
				}
				got += i
				w.mismatch(fmt.Sprintf("mismatch at stream byte %d (%s): expected %s, got %s",
					w.streamOff+int64(got), w.where(buf, ends, got),
					summary(buf[got:min(want, got+16)]), summary(w.rbuf[i:min(n, i+16)])))
				return false
			}
			got += m
			k := 0
			for li < len(ends) && ends[li] <= got {
				li++
				k++
			}
			if k > 0 {
				w.hist.RecordN(now.Sub(t0), k)
				lines += int64(k)
			}
			if m < n {
				w.mismatch(fmt.Sprintf("%d unexpected bytes at stream byte %d: %s",
					n-m, w.streamOff+int64(got), summary(w.rbuf[m:min(n, m+16)])))
				return false
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && got == want && halfClose {
				eof = true
				break
			}
			if errors.Is(err, io.EOF) && halfClose {
				w.mismatch(fmt.Sprintf("after half-close the server closed with %d of %d bytes not echoed (stream bytes %d..%d, %s): lost %s",
					want-got, want, w.streamOff+int64(got), w.streamOff+int64(want)-1,
					w.where(buf, ends, got), summary(buf[got:min(want, got+16)])))
				return false
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("server closed the connection with %d bytes unechoed: %w", want-got, io.ErrUnexpectedEOF)
			}
			w.fail(err)
			return false
		}
		w.touch(c, now)
	}
	if !halfClose || eof {
		if eof {
			w.st.halfCloses.Add(1)
		}
		return true
	}
	// Everything is back: now nothing more, then EOF.
	n, err := c.Read(w.rbuf)
	if n > 0 {
		w.mismatch(fmt.Sprintf("%d unexpected bytes at stream byte %d, after a half-close: %s",
			n, w.streamOff+int64(got), summary(w.rbuf[:min(n, 16)])))
		return false
	}
	if err == nil || !errors.Is(err, io.EOF) {
		if err == nil {
			err = io.ErrNoProgress
		}
		w.fail(fmt.Errorf("waiting for EOF after a half-close: %w", err))
		return false
	}
	w.st.halfCloses.Add(1)
	return true
}

// where describes offset off of a batch: which line, which byte of it.
func (w *worker) where(buf []byte, ends []int, off int) string {
	start := 0
	for i, e := range ends {
		if off < e {
			return fmt.Sprintf("byte %d of a %d-byte line", off-start, e-start)
		}
		start = ends[i]
	}
	return fmt.Sprintf("byte %d of a %d-byte unterminated tail", off-start, len(buf)-start)
}

// mismatch counts a mismatch and logs the first one of this slot.
func (w *worker) mismatch(msg string) {
	w.st.mismatches.Add(1)
	msg = fmt.Sprintf("conn %d: %s", w.id, msg)
	w.r.note(&w.r.firstMismatch, msg)
	if !w.logged {
		w.logged = true
		w.r.logf("bench: %s\n", msg)
	}
}

// fail counts an error, unless the run was cancelled, which explains it.
func (w *worker) fail(err error) {
	if w.r.ctx.Err() != nil {
		return
	}
	w.st.errors.Add(1)
	w.r.note(&w.r.firstErr, err.Error())
}

// summary shows a few bytes as a quoted string and in hex.
func summary(p []byte) string {
	if len(p) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%q (% x)", p, p)
}
