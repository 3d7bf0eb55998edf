// Package api is the contract between netd's event loops and its modules.
//
// A module is a package that registers itself in init() with Register. For
// every listener bound to it, netd calls its Info.New, then Provision with the
// listener's options; all of that happens before the first socket opens, so
// a bad option stops start-up (or a reload) with a FILE:LINE:COL error.
//
// Once the listener runs, the loop calls the module from its own goroutine,
// inline, one event at a time: a stream module implements StreamHandler, a
// datagram module PacketHandler, many modules both. A callback must never
// block: it reads what arrived, writes what it has, and returns. Work that
// must wait (a child process, a DNS lookup) runs elsewhere and comes back
// through Loop.Submit.
//
// Threading rule for this package: every method of Conn and PacketWriter may
// be called only on the loop that owns it, that is from inside a callback or
// from a function passed to Loop.Submit. Methods that may be called from any
// goroutine say so.
//
// The life cycle of a module instance is:
//
//	New -> Provision -> [Start] -> callbacks ... -> [OnDrain] -> [Stop]
//
// Start and Stop are optional (Starter, Stopper); OnDrain is optional
// (Drainer).
package api

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Module is one configured instance of a module, serving one listener.
// It must also implement StreamHandler, PacketHandler or both; a listener
// whose network the module cannot serve is a config error.
type Module interface {
	// Provision decodes and validates the listener's options and prepares the
	// instance. It runs before any socket opens and must not open one.
	Provision(s Setup) error
}

// Setup is what a module instance learns about its listener at Provision.
type Setup struct {
	// Listener is the listener's unique name, as in the config.
	Listener string
	// Network is "tcp", "udp" or "unix": the kind of socket the module will serve.
	Network string
	// Address is the listener's address as the config spells it
	// (tcp://0.0.0.0:8888, unix:///run/netd/echo.sock, fd://web), so that
	// a module that connects out can refuse to connect to itself (see
	// Setup.IsOwnAddress).
	Address string
	// Options is the listener's options block, decoded by the module.
	// Never nil: an absent block is an empty one.
	Options Options
	// Logger is a sub-logger named after the listener.
	Logger hclog.Logger
	// Metrics registers the instance's own collectors (name them
	// netd_<module>_<what>), served on /metrics with the labels module and
	// listener added. Register through RegisterMetric, so that a reload
	// carries the counters on. Never nil; without an admin endpoint
	// nothing is served. docs/MODULES.md says how long series live.
	Metrics prometheus.Registerer
}

// RegisterMetric registers c with r and returns it, or returns the
// collector already registered under the same name and labels, which is
// the one of the instance a reload replaces: the new instance counts on in
// it, so that a reload neither resets nor double-counts. Call it in
// Provision. With a nil r, c works unregistered.
func RegisterMetric[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if r == nil {
		return c, nil
	}
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}

// Options is a listener's options block, with the position of every key
// kept so that errors point into the config file.
type Options interface {
	// Decode stores the options in v, a pointer to a struct whose fields are
	// tagged `option:"name"`; pkg/options lists the field types. A field
	// whose option is absent keeps its value, so set defaults first. An
	// unknown option or a value of the wrong type is a FILE:LINE:COL error.
	Decode(v any) error
	// Errorf returns an error positioned at option key (at the options block
	// when the key is absent), for a value that decoded but is not valid.
	Errorf(key string, format string, args ...any) error
}

// StreamHandler serves stream connections (tcp and unix).
type StreamHandler interface {
	// OnAccept runs once, when the connection is accepted. A module whose
	// protocol speaks first may write here.
	OnAccept(c Conn)
	// OnReadable runs when bytes arrived (see Conn.Inbound) or the peer
	// half-closed (see Conn.InputClosed).
	OnReadable(c Conn)
	// OnWritable runs when the connection's queued output has drained to
	// nothing after having been queued, and, while Conn.WantWritable(true)
	// is set, whenever the socket can take more output. A module that
	// produces output on demand (chargen) writes here.
	OnWritable(c Conn)
	// OnClose runs once, after the connection's descriptor is closed. err is
	// the error that closed it, nil on a clean close. The Conn may not be
	// written to any more; its Context is still readable.
	OnClose(c Conn, reason Reason, err error)
}

// StreamBase gives a stream module the callbacks it has nothing to do in:
// embed it and write OnReadable, plus whichever of OnAccept, OnWritable and
// OnClose the protocol needs. OnReadable is left out on purpose, so that
// the compiler still asks for the one callback every protocol must have.
type StreamBase struct{}

// OnAccept does nothing: the module waits for the client to speak.
func (StreamBase) OnAccept(Conn) {}

// OnWritable does nothing: the module writes only in answer to input.
func (StreamBase) OnWritable(Conn) {}

// OnClose does nothing: the module keeps nothing to release.
func (StreamBase) OnClose(Conn, Reason, error) {}

// PacketHandler serves datagram sockets (udp).
type PacketHandler interface {
	// OnPacket runs for each datagram received. p is valid only until
	// OnPacket returns.
	OnPacket(w PacketWriter, p []byte, from netip.AddrPort)
}

// Drainer is implemented by stream modules that have something to say when
// the daemon drains (SIGTERM): OnDrain runs once per open connection after
// everything the client had already sent was handed to OnReadable. Without
// it the loop closes the connection gracefully.
type Drainer interface {
	OnDrain(c Conn)
}

// Starter is implemented by modules that hold resources beyond their
// connections. Start runs once the listener's socket is bound, before the
// first connection.
type Starter interface {
	Start() error
}

// Stopper is implemented by modules that must release resources. Stop runs
// once: after the listener's last connection closed, or at once when the
// listener could not be made (its address taken, say), which may be before
// Start ever ran.
type Stopper interface {
	Stop() error
}

// Conn is one stream connection as a module sees it. Only the loop that owns
// the connection may call its methods.
type Conn interface {
	// Inbound returns the bytes received and not yet consumed, in any
	// callback or submitted function. The slice is valid only until the
	// callback returns; bytes left unconsumed are kept by the loop and show
	// up again, followed by newer bytes.
	Inbound() []byte
	// Consume marks the first n bytes of Inbound as handled.
	Consume(n int)
	// InputClosed reports whether the peer has half-closed: nothing more
	// will arrive.
	InputClosed() bool

	// Write sends p, or queues the part the kernel did not take, and
	// returns len(p), nil: queued bytes count as written. It never blocks
	// and never keeps p. It fails with ErrClosed once the connection is
	// closing or half-closed. When the kernel refuses a write (the peer
	// reset, or stopped reading for good), Write returns that error and
	// queued output is dropped, but reading goes on: what the peer sent
	// before it went is still delivered, and once its end-of-file has been
	// delivered and consumed the loop closes the connection (ReasonError).
	Write(p []byte) (int, error)
	// Buffered returns the number of bytes queued and not yet taken by the
	// kernel.
	Buffered() int
	// WantWritable asks for OnWritable whenever the socket can take output
	// and nothing is queued (on), or only after queued output drained (off,
	// the default).
	WantWritable(on bool)
	// PauseReading stops reading from the connection until ResumeReading.
	// The loop also pauses by itself while queued output is above the
	// listener's high watermark.
	PauseReading()
	// ResumeReading undoes PauseReading.
	ResumeReading()

	// CloseWrite half-closes: once queued output is flushed, the peer reads
	// end-of-file. Reading goes on.
	CloseWrite() error
	// Close flushes queued output (within a deadline), then closes. The
	// reason is ReasonError after a failed write, ReasonShutdown during a
	// drain, ReasonClient when the peer had half-closed, ReasonDone
	// otherwise.
	Close() error
	// CloseFor is Close with an explicit reason, for metrics and logs.
	CloseFor(reason Reason, err error)
	// Abort closes at once; queued output and unread input are discarded,
	// and a TCP peer gets a reset rather than an end-of-file, so that it
	// cannot mistake the abort for the end of a complete exchange.
	//
	// Close, CloseFor and Abort may be called more than once; only the
	// first counts. OnClose may run inside any of them, before it returns.
	Abort(reason Reason, err error)

	// Listener returns the name of the listener that accepted the connection.
	Listener() string
	// LocalAddr returns the local address of the connection.
	LocalAddr() net.Addr
	// RemoteAddr returns the peer's address.
	RemoteAddr() net.Addr
	// Context returns what SetContext stored, nil at first.
	Context() any
	// SetContext stores per-connection state for the module.
	SetContext(v any)
	// Loop returns the loop that owns the connection.
	Loop() Loop
	// TLS returns what the connection's TLS handshake negotiated; nil on
	// a plaintext connection.
	TLS() *TLSInfo
}

// PacketWriter sends datagrams from one socket. Only the loop that owns the
// socket may call its methods.
type PacketWriter interface {
	// WriteTo sends p to addr, or queues a copy when the socket is full.
	// When the queue is full too the datagram is dropped and WriteTo
	// returns ErrQueueFull.
	WriteTo(p []byte, addr netip.AddrPort) error
	// Listener returns the name of the listener the socket belongs to.
	Listener() string
}

// Loop is the event loop that owns a connection, as seen by the module of
// one listener: connections it dials or attaches are counted, logged and
// drained with that listener's.
type Loop interface {
	// Submit runs f on the loop as soon as it can. It may be called from any
	// goroutine. It fails with ErrLoopClosed once the loop has stopped.
	Submit(f func()) error
	// Now returns the loop's clock, read once per batch of events; cheaper
	// than time.Now on the hot path. Loop only.
	Now() time.Time
	// Dial starts a non-blocking connect to address on network ("tcp"
	// with host:port, where host is an IP address or localhost, or "unix"
	// with a path) and returns the connection at once. h.OnAccept runs
	// once it is connected; if the connect fails or takes longer than
	// timeout (0: no limit), h.OnClose runs with ReasonError and the error.
	// Until OnAccept, Write queues. Close before OnAccept closes at once
	// (OnClose runs, OnAccept never does), or, with output queued, once
	// it is delivered. Loop only.
	Dial(network, address string, timeout time.Duration, h StreamHandler) (Conn, error)
	// Attach takes ownership of fd, a connected stream socket (one end of a
	// socketpair, say), and serves it like an accepted connection with h;
	// h.OnAccept runs before Attach returns. Loop only.
	Attach(fd int, h StreamHandler) (Conn, error)
	// Watch calls f on the loop each time fd is readable, until stop is
	// called; fd stays the caller's to close, after stop. For descriptors
	// that are not connections, such as a pidfd that turns readable when a
	// child process exits. Loop only.
	Watch(fd int, f func()) (stop func(), err error)
}

// Reason says why a connection closed. It is the reason label of
// netd_connections_closed_total. A module defines its own reasons as
// constants of its package (echo.ReasonLineTooLong), not here.
type Reason string

// The reasons the loop itself uses; modules may use these or their own.
const (
	ReasonClient      Reason = "client"       // the peer closed or half-closed
	ReasonDone        Reason = "done"         // the module finished the exchange
	ReasonIdleTimeout Reason = "idle_timeout" // nothing sent or received for idle_timeout
	ReasonOverLimit   Reason = "over_limit"   // max_connections reached
	ReasonError       Reason = "error"        // a socket error such as ECONNRESET
	ReasonShutdown    Reason = "shutdown"     // the daemon drained the connection
)

// Errors the contract returns.
var (
	ErrClosed     = errors.New("netd: connection closed")
	ErrQueueFull  = errors.New("netd: output queue full, datagram dropped")
	ErrLoopClosed = errors.New("netd: loop closed")
	// ErrConnectTimeout is the error OnClose sees when a Dial took longer
	// than its timeout.
	ErrConnectTimeout = errors.New("netd: connect timed out")
)

// IsReflectorPort reports whether a datagram from port must go unanswered by
// services that answer every datagram (echo, chargen, daytime, time): port 0
// and the privileged ports, where the small inetd services live, so that two
// such services cannot be set bouncing packets at each other with a spoofed
// source address.
func IsReflectorPort(port uint16) bool {
	return port < 1024
}
