package loop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
)

// DefaultHandshakeTimeout is the handshake timeout of a TLSSpec that
// leaves it zero.
const DefaultHandshakeTimeout = 10 * time.Second

// maxHandshakeInput bounds the ciphertext a client may send ahead of a
// handshake that has not consumed it: a client that floods during its
// handshake is closed rather than buffered. The largest handshake message
// crypto/tls accepts is 64 KiB, and a flight holds a few.
const maxHandshakeInput = 256 << 10

// maxPlaintextRecord is the largest record a ClientHello may come in
// (RFC 8446, 5.1): a first record that says it is longer is not TLS, and
// is refused before anything waits for its length.
const maxPlaintextRecord = 16 << 10

// TLSSpec terminates TLS on a stream listener: the loop reads and writes
// ciphertext, its module sees plaintext through the same api.Conn.
type TLSSpec struct {
	// Config is the server configuration of new handshakes. It is shared
	// by every handshake, which is what lets crypto/tls's session ticket
	// keys resume sessions; do not change it once the listener runs.
	Config *tls.Config
	// GetConfig, when set, is called for every new handshake instead of
	// using Config, so that a reloaded certificate reaches new handshakes
	// while established connections go on. It runs on a handshake's
	// goroutine, from any goroutine: it must be safe for concurrent use
	// (an atomic.Pointer's Load, say). A nil result fails the handshake.
	GetConfig func() *tls.Config
	// HandshakeTimeout closes a connection whose client has not finished
	// its handshake that long after it connected or after the server's
	// last handshake flight; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// check reports a spec that cannot serve; a nil spec is plaintext.
func (s *TLSSpec) check() error {
	if s == nil {
		return nil
	}
	if s.Config == nil && s.GetConfig == nil {
		return errors.New("tls: no Config and no GetConfig")
	}
	if s.HandshakeTimeout < 0 {
		return fmt.Errorf("tls: negative handshake timeout %v", s.HandshakeTimeout)
	}
	return nil
}

func (s *TLSSpec) config() *tls.Config {
	if s.GetConfig != nil {
		return s.GetConfig()
	}
	return s.Config
}

func (s *TLSSpec) timeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

var (
	errHandshakeTimeout = errors.New("tls: handshake timed out")
	errNotTLS           = errors.New("tls: first record is not a TLS handshake")
	errHandshakeFlood   = fmt.Errorf("tls: more than %d bytes sent ahead of the handshake", maxHandshakeInput)
	errHandshakeBusy    = errors.New("tls: too many handshakes waiting")
)

// wouldBlock is what tlsState.Read returns in record mode once the bytes
// the loop read are used up. crypto/tls keeps a partial record buffered
// and does not make the error sticky, because it is a temporary
// net.Error; the next read carries on.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// tlsScratch is a loop's TLS buffers, shared by its connections: plain
// receives what a read decrypts, out collects the records one call into
// crypto/tls writes, so that they leave in one system call.
type tlsScratch struct {
	plain []byte
	out   []byte
}

// tlsScratch returns the loop's TLS buffers, making them on first use.
// plain is larger than the read buffer by a record and more: what one
// read decrypts (a partial record kept from before, and the bytes read)
// then fits in one delivery.
func (l *eventLoop) tlsScratch() *tlsScratch {
	if l.tls == nil {
		l.tls = &tlsScratch{plain: make([]byte, len(l.readBuf)+32<<10)}
	}
	return l.tls
}

// tlsState is the TLS layer of one connection, and the net.Conn that
// crypto/tls reads and writes. It has two modes.
//
// During the handshake, crypto/tls runs on a goroutine of the handshake
// pool (handshakes): the loop appends the ciphertext it reads to in and
// wakes that goroutine; what the handshake writes is submitted to the
// loop and sent from there. The module does not see the connection: its
// handler is handshaker, so no callback reaches the module, and OnAccept
// runs once the handshake is done.
//
// Then, in record mode, everything runs on the loop and no goroutine is
// left: a read hands the bytes just read to tls.Conn.Read (fresh), which
// decrypts until Read returns errWouldBlock; a module's Write goes
// through tls.Conn.Write, whose records collect in the loop's scratch and
// go out in one write.
type tlsState struct {
	c    *conn
	spec *TLSSpec
	tc   *tls.Conn // made on the handshake goroutine; the loop's once in record mode
	info *api.TLSInfo

	// Shared with the handshake goroutine, under mu.
	mu     sync.Mutex
	in     []byte // ciphertext not yet read by crypto/tls
	eof    bool   // the peer sent FIN
	closed bool   // the connection is closed: the handshake gives up
	wake   chan struct{}

	// The loop's.
	queued   bool   // handed to the pool
	record   bool   // the handshake is done
	notified bool   // close_notify sent
	fresh    []byte // record mode: the bytes the loop just read
}

// handshaker is the handler of a connection during its handshake: the
// module hears of the connection only once the handshake succeeded, and
// of its close only if it did.
type handshaker struct{}

func (handshaker) OnAccept(api.Conn)                   {}
func (handshaker) OnReadable(api.Conn)                 {}
func (handshaker) OnWritable(api.Conn)                 {}
func (handshaker) OnClose(api.Conn, api.Reason, error) {}

// tlsAccept starts the handshake of an accepted connection: its timeout
// starts now, and the pool takes it once the client's first record is in.
func (c *conn) tlsAccept() {
	spec := c.lis.spec.TLS
	st := &tlsState{c: c, spec: spec, wake: make(chan struct{}, 1)}
	x := c.ensureExtra()
	x.tls = st
	x.handler = handshaker{}
	c.setList(c.loop.timeoutList(spec.timeout(), api.ReasonHandshakeTimeout, errHandshakeTimeout))
}

// TLS implements api.Conn.
func (c *conn) TLS() *api.TLSInfo {
	if c.extra == nil || c.extra.tls == nil {
		return nil
	}
	return c.extra.tls.info
}

// tlsReadOnce is readOnce on a TLS connection.
func (c *conn) tlsReadOnce() bool {
	st := c.extra.tls
	if !st.record && c.flags&flagClosing != 0 {
		c.discardInput() // the handshake failed; its alert is being flushed
		return false
	}
	n, err := rawRead(int(c.fd), c.loop.readBuf)
	switch {
	case n > 0:
		c.countIn(n)
		if !st.record {
			st.handshakeInput(c.loop.readBuf[:n])
			return !c.closed
		}
		c.touch()
		st.fresh = c.loop.readBuf[:n]
		st.pump()
		return true
	case n == 0 && err == nil:
		if !st.record {
			// The handshake may yet finish with what came before the
			// FIN; the module is shown the end after that input.
			st.mu.Lock()
			st.eof = true
			st.mu.Unlock()
			st.signal()
			c.flags |= flagInputClosed
			c.updateInterest()
			return true
		}
		if c.flags&flagWriteFailed != 0 {
			c.closeNow(api.ReasonError, errWriteFailed)
			return false
		}
		st.eof = true
		st.pump()
		return true
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	default:
		c.closeNow(api.ReasonError, err)
		return false
	}
}

// handshakeInput hands ciphertext read during the handshake to its
// goroutine, and the connection to the pool once the client's first
// record is complete: a client that connects and sends nothing, or
// trickles its ClientHello, holds no goroutine.
func (st *tlsState) handshakeInput(p []byte) {
	st.mu.Lock()
	if len(st.in)+len(p) > maxHandshakeInput {
		st.mu.Unlock()
		st.fail(errHandshakeFlood)
		return
	}
	st.in = append(st.in, p...)
	in := st.in
	st.mu.Unlock()
	st.signal()
	if st.queued {
		return
	}
	if in[0] != 22 { // a handshake record
		st.fail(errNotTLS)
		return
	}
	if len(in) < 5 {
		return
	}
	if n := int(in[3])<<8 | int(in[4]); n > maxPlaintextRecord {
		st.fail(errNotTLS)
		return
	} else if len(in) < 5+n {
		return
	}
	st.queued = true
	if !handshakes.start(st) {
		st.fail(errHandshakeBusy)
	}
}

// fail ends a connection whose handshake failed (api.ReasonHandshakeFailed,
// which /metrics counts per listener), after what crypto/tls wrote (an
// alert) is flushed. Logged once a second at most: any client
// can cause it.
func (st *tlsState) fail(err error) {
	c := st.c
	if c.lis.tlsLog.Allow(c.loop.now) {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			c.lis.log.Debug("TLS handshake failed; connection closed", "remote", c.remoteString(), "error", err)
		} else {
			c.lis.log.Warn("TLS handshake failed; connection closed", "remote", c.remoteString(), "error", err)
		}
	}
	c.CloseFor(api.ReasonHandshakeFailed, fmt.Errorf("tls handshake: %w", err))
}

// signal wakes the handshake goroutine if it waits for input.
func (st *tlsState) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// handshake runs on a pool goroutine.
func (st *tlsState) handshake() {
	var cs tls.ConnectionState
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		cfg := st.spec.config()
		if cfg == nil {
			return errors.New("no configuration")
		}
		st.tc = tls.Server(st, cfg)
		if err := st.tc.Handshake(); err != nil {
			return err
		}
		cs = st.tc.ConnectionState()
		return nil
	}()
	_ = st.c.loop.Submit(func() { st.handshakeDone(cs, err) })
}

// handshakeDone switches a connection to record mode and shows it to its
// module, or closes it. Loop only.
func (st *tlsState) handshakeDone(cs tls.ConnectionState, err error) {
	c := st.c
	if c.closed || c.flags&flagClosing != 0 {
		return
	}
	if err != nil {
		st.fail(err)
		return
	}
	if c.flags&flagWriteFailed != 0 {
		c.closeNow(api.ReasonError, errWriteFailed)
		return
	}
	st.record = true
	st.info = tlsInfo(&cs)
	c.extra.handler = nil
	c.setList(nil)
	if c.lis.spec.IdleTimeout > 0 {
		c.setList(c.loop.idleList(c.lis.spec.IdleTimeout))
	}
	c.loop.guard(c, func() { c.callback(c.lis.stream.OnAccept) })
	if c.closed {
		return
	}
	if c.lis.engine.draining.Load() {
		c.drain()
	}
	// Records that came with the client's last flight (a TLS 1.3 client
	// sends at once), and the end of input if it came too.
	c.loop.guard(c, st.pump)
}

// tlsInfo is what api.Conn.TLS reports for cs.
func tlsInfo(cs *tls.ConnectionState) *api.TLSInfo {
	info := &api.TLSInfo{
		Version:     cs.Version,
		CipherSuite: cs.CipherSuite,
		ALPN:        cs.NegotiatedProtocol,
		ServerName:  cs.ServerName,
		DidResume:   cs.DidResume,
	}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		info.PeerSubject = cs.VerifiedChains[0][0].Subject.String()
	}
	return info
}

// pump decrypts what is buffered and fresh, and delivers the plaintext;
// then the end of input if the peer sent close_notify or a FIN at a
// record boundary. Record mode, loop only.
func (st *tlsState) pump() {
	c := st.c
	plain := c.loop.tlsScratch().plain
	off := 0
	for !c.closed {
		if off == len(plain) {
			c.deliver(plain)
			off = 0
			continue
		}
		k, err := st.tc.Read(plain[off:])
		off += k
		if err == nil {
			continue
		}
		st.fresh = nil
		// crypto/tls may have written: a KeyUpdate's answer, an alert.
		_ = st.flushOut()
		if off > 0 && !c.closed {
			c.deliver(plain[:off])
		}
		if c.closed {
			return
		}
		switch {
		case err == errWouldBlock:
		case err == io.EOF:
			c.flags |= flagInputClosed
			c.deliver(nil)
			c.updateInterest()
		default:
			if c.lis.tlsLog.Allow(c.loop.now) {
				c.lis.log.Warn("TLS record error; connection closed", "remote", c.remoteString(), "error", err)
			}
			c.closeNow(api.ReasonError, fmt.Errorf("tls: %w", err))
		}
		return
	}
}

// tlsWrite is Write on a TLS connection.
func (c *conn) tlsWrite(p []byte) (int, error) {
	st := c.extra.tls
	if !st.record {
		return 0, api.ErrClosed // a module sees the connection only after its handshake
	}
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := st.tc.Write(p); err != nil {
		return 0, fmt.Errorf("tls: %w", err)
	}
	if err := st.flushOut(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushOut sends the records crypto/tls wrote into the loop's scratch.
// The scratch is reset before the write: writeRaw may run a module's
// OnClose, which may write to another TLS connection of this loop.
func (st *tlsState) flushOut() error {
	sc := st.c.loop.tlsScratch()
	p := sc.out
	if len(p) == 0 {
		return nil
	}
	sc.out = p[len(p):]
	_, err := st.c.writeRaw(p)
	if cap(p) <= 256<<10 {
		sc.out = p[:0]
	} else {
		sc.out = nil // one huge write must not pin its buffer
	}
	return err
}

// tlsCloseNotify sends close_notify once, ahead of the half-close, and
// reports whether it is queued: the caller carries on once it is flushed.
func (c *conn) tlsCloseNotify() bool {
	st := c.extra.tls
	if !st.record || st.notified || c.closed || c.flags&flagWriteFailed != 0 {
		return false
	}
	st.notified = true
	_ = st.tc.CloseWrite()
	_ = st.flushOut()
	return !c.closed && c.buffered() > 0
}

// tlsRelease ends the TLS layer as the connection closes: a handshake in
// progress gives up. info stays, for OnClose.
func (c *conn) tlsRelease() {
	st := c.extra.tls
	st.mu.Lock()
	st.closed = true
	st.in = nil
	st.mu.Unlock()
	st.signal()
	st.fresh = nil
}

// Read implements net.Conn for crypto/tls.
func (st *tlsState) Read(p []byte) (int, error) {
	if st.record {
		switch {
		case len(st.in) > 0: // read during the handshake, not yet consumed
			n := copy(p, st.in)
			if st.in = st.in[n:]; len(st.in) == 0 {
				st.in = nil
			}
			return n, nil
		case len(st.fresh) > 0:
			n := copy(p, st.fresh)
			st.fresh = st.fresh[n:]
			return n, nil
		case st.eof:
			return 0, io.EOF
		}
		return 0, errWouldBlock
	}
	st.mu.Lock()
	for len(st.in) == 0 && !st.closed && !st.eof {
		st.mu.Unlock()
		handshakes.idle()
		<-st.wake
		handshakes.busy()
		st.mu.Lock()
	}
	defer st.mu.Unlock()
	switch {
	case st.closed:
		return 0, net.ErrClosed
	case len(st.in) == 0:
		return 0, io.EOF
	}
	n := copy(p, st.in)
	if st.in = st.in[n:]; len(st.in) == 0 {
		st.in = nil
	}
	return n, nil
}

// Write implements net.Conn for crypto/tls: during the handshake the
// bytes go to the loop as a task, in order; in record mode, to the loop's
// scratch, which the caller flushes (flushOut).
func (st *tlsState) Write(p []byte) (int, error) {
	if st.record {
		sc := st.c.loop.tlsScratch()
		sc.out = append(sc.out, p...)
		return len(p), nil
	}
	b := append([]byte(nil), p...)
	c := st.c
	err := c.loop.Submit(func() {
		if !c.closed && c.extra.tls == st {
			_, _ = c.writeRaw(b)
		}
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close implements net.Conn; the loop closes the descriptor.
func (st *tlsState) Close() error { return nil }

// LocalAddr implements net.Conn; crypto/tls shows it to a GetConfigForClient
// callback (ClientHelloInfo.Conn).
func (st *tlsState) LocalAddr() net.Addr {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return &net.TCPAddr{}
	}
	sa, err := unix.Getsockname(int(st.c.fd))
	if err != nil {
		return &net.TCPAddr{}
	}
	return sockaddrToNet(sa)
}

// RemoteAddr implements net.Conn. The peer's address does not change
// after accept.
func (st *tlsState) RemoteAddr() net.Addr { return st.c.RemoteAddr() }

// SetDeadline implements net.Conn: the loop enforces the handshake
// timeout, and nothing blocks after it.
func (st *tlsState) SetDeadline(time.Time) error      { return nil }
func (st *tlsState) SetReadDeadline(time.Time) error  { return nil }
func (st *tlsState) SetWriteDeadline(time.Time) error { return nil }
