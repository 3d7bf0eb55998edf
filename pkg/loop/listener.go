package loop

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/netd/netd/internal/unixsock"
	"github.com/netd/netd/pkg/address"
	"github.com/netd/netd/pkg/modules/api"
)

// ListenerSpec says what to bind and who serves it.
type ListenerSpec struct {
	// Name identifies the listener in logs and metrics.
	Name string
	// Network is tcp, tcp4, tcp6, udp, udp4, udp6 or unix.
	Network string
	// Address is host:port for tcp and udp, a path for unix.
	Address string
	// File, when set, is an already bound socket to serve instead of
	// binding Address (systemd activation, upgrades, Bind). Listen dups it.
	File *os.File
	// OwnSocketFile, with File on a unix listener, makes the listener
	// remove the socket file at Address when it closes, as if it had bound
	// it.
	OwnSocketFile bool
	// SocketMode, SocketUser and SocketGroup are the permissions and owner
	// (a name or a numeric id; "" keeps netd's) of the socket file a unix
	// listener creates; SocketMode 0 is DefaultSocketMode. unixsock.go
	// says how the file gets them without a window.
	SocketMode              os.FileMode
	SocketUser, SocketGroup string
	// Module serves the listener. It must implement api.StreamHandler for
	// stream networks and api.PacketHandler for udp.
	Module api.Module
	// MaxConnections caps live connections; 0 means no cap.
	MaxConnections int
	// IdleTimeout closes a connection that neither sent nor received for
	// that long; 0 means never.
	IdleTimeout time.Duration
	// HighWatermark and LowWatermark bound queued output per connection;
	// 0: api.DefaultHighWatermark and api.DefaultLowWatermark.
	HighWatermark, LowWatermark int
	// MaxInput bounds the bytes a module may leave unconsumed; 0:
	// api.DefaultMaxInput.
	MaxInput int
	// Logger is the listener's named logger; nil means the engine's.
	Logger hclog.Logger
	// TLS, when set, terminates TLS on a stream listener (tls.go).
	TLS *TLSSpec
	// Edge, when set, is PROXY protocol, access control and the access
	// log (edge.go).
	Edge *EdgeSpec
}

// Listener is one bound socket and the module that serves it. Its methods
// may be called from any goroutine; Close not from a loop's own, since it
// waits for the loops.
type Listener struct {
	spec    ListenerSpec
	engine  *Engine
	log     hclog.Logger
	fd      int
	family  string // "stream" or "packet"
	addr    string // the bound address, config spelling
	stream  api.StreamHandler
	packet  api.PacketHandler
	drainer api.Drainer

	sock unixsock.File // unix socket file to remove on close, if still there

	active   atomic.Int64
	stats    []counters // one per loop, so loops never share a cache line
	closed   atomic.Bool
	stopOnce sync.Once

	// The "over limit", accept error and TLS handshake warnings, one a
	// second each.
	overLimitLog, acceptErrLog, tlsLog api.LogLimit
	// The input bound and module panic lines, one a second each: a client
	// can trigger both, on every connection it opens.
	inputLog, panicLog api.LogLimit

	packetSock *packetSocket
	// edge is what the listener does before its module sees a connection
	// or datagram; nil when nothing (edge.go).
	edge *edge
	// views are the listener's api.Loop on each loop.
	views []*loopView
}

func newListener(e *Engine, spec ListenerSpec) (*Listener, error) {
	if spec.Logger == nil {
		spec.Logger = e.log.Named("listener." + spec.Name)
	}
	if spec.HighWatermark <= 0 {
		spec.HighWatermark = api.DefaultHighWatermark
	}
	if spec.LowWatermark <= 0 || spec.LowWatermark >= spec.HighWatermark {
		spec.LowWatermark = api.DefaultLowWatermark(spec.HighWatermark)
	}
	if spec.MaxInput <= 0 {
		spec.MaxInput = api.DefaultMaxInput
	}
	l := &Listener{
		spec:   spec,
		engine: e,
		log:    spec.Logger,
		fd:     -1,
		stats:  make([]counters, len(e.loops)),
	}
	for _, lp := range e.loops {
		l.views = append(l.views, &loopView{eventLoop: lp, lis: l})
	}
	l.stream, _ = spec.Module.(api.StreamHandler)
	l.packet, _ = spec.Module.(api.PacketHandler)
	l.drainer, _ = spec.Module.(api.Drainer)

	var err error
	switch spec.Network {
	case "tcp", "tcp4", "tcp6", "unix":
		l.family = "stream"
		if l.stream == nil {
			return nil, fmt.Errorf("listener %q: module does not serve %s", spec.Name, spec.Network)
		}
		if err := spec.TLS.check(); err != nil {
			return nil, fmt.Errorf("listener %q: %w", spec.Name, err)
		}
	case "udp", "udp4", "udp6":
		l.family = "packet"
		if l.packet == nil {
			return nil, fmt.Errorf("listener %q: module does not serve %s", spec.Name, spec.Network)
		}
		if spec.TLS != nil {
			return nil, fmt.Errorf("listener %q: TLS needs a stream network, not %s", spec.Name, spec.Network)
		}
	default:
		return nil, fmt.Errorf("listener %q: unknown network %q", spec.Name, spec.Network)
	}
	if l.edge, err = newEdge(spec.Edge, spec.MaxConnections, l.family == "packet"); err != nil {
		return nil, fmt.Errorf("listener %q: %w", spec.Name, err)
	}
	if spec.File != nil {
		l.fd, err = adoptSocket(spec.File, l.family)
		if err == nil && spec.OwnSocketFile && spec.Network == "unix" {
			// A file gone or replaced meanwhile is not the listener's to
			// remove; the socket serves on all the same.
			l.sock, _ = unixsock.Stat(spec.Address)
		}
	} else if spec.Network == "unix" {
		l.fd, l.sock, err = bindUnix(spec.Address, spec.SocketMode, spec.SocketUser, spec.SocketGroup)
	} else {
		l.fd, err = bindSocket(spec.Network, spec.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", spec.Name, err)
	}
	l.addr, err = boundAddress(l.fd, spec.Network)
	if err != nil {
		l.closeSocket()
		return nil, fmt.Errorf("listener %q: %w", spec.Name, err)
	}
	if l.family == "packet" {
		l.packetSock = newPacketSocket(l, e.pickLoop(len(e.listeners)))
	}
	return l, nil
}

// Name returns the listener's name. Any goroutine.
func (l *Listener) Name() string { return l.spec.Name }

// Addr returns the bound address in config spelling, with the real port
// where port 0 was asked for: tcp://127.0.0.1:41234, unix:///run/x.sock.
// Any goroutine.
func (l *Listener) Addr() string { return l.addr }

// Spec returns the spec the listener was created with. Any goroutine.
func (l *Listener) Spec() ListenerSpec { return l.spec }

// ActiveConnections returns the listener's live connections. Any
// goroutine.
func (l *Listener) ActiveConnections() int64 { return l.active.Load() }

// File returns a dup of the listening socket, for handing it to another
// process. The caller closes it. Any goroutine.
func (l *Listener) File() (*os.File, error) {
	fd, err := dupCloexec(l.fd)
	if err != nil {
		return nil, fmt.Errorf("listener %q: dup: %w", l.spec.Name, err)
	}
	return os.NewFile(uintptr(fd), l.spec.Name), nil
}

// dupCloexec dups fd close-on-exec in one step: a dup then a separate
// FD_CLOEXEC would leave a window in which a child forked by another
// goroutine (an exec module, an upgrade) inherits the socket.
func dupCloexec(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// start registers the socket with the loops: every loop for a stream
// listener, one loop for a datagram socket. Blocks until they have done so.
func (l *Listener) start() error {
	if l.family == "packet" {
		ps := l.packetSock
		return ps.loop.call(func() error { return ps.loop.add(l.fd, ps, unix.EPOLLIN) })
	}
	for _, lp := range l.engine.loops {
		a := &acceptor{lis: l, loop: lp}
		err := lp.call(func() error {
			return lp.add(l.fd, a, acceptEvents)
		})
		if err != nil {
			return fmt.Errorf("listener %q: %w", l.spec.Name, err)
		}
	}
	return nil
}

// Close stops accepting. Open connections go on until they close; the
// module is stopped once the last one has. Safe to call twice. Any
// goroutine but a loop's.
func (l *Listener) Close() {
	if l.closed.Swap(true) {
		return
	}
	for _, lp := range l.engine.loops {
		lp := lp
		_ = lp.call(func() error {
			lp.removeFD(l.fd)
			return nil
		})
	}
	l.closeSocket()
	if l.active.Load() == 0 && !l.engine.draining.Load() {
		l.stopModule()
	}
}

// Disown makes Close leave the unix socket file in place: another process
// (an upgrade) serves it now. Other sockets have no file to keep. Any
// goroutine.
func (l *Listener) Disown() {
	l.engine.mu.Lock()
	l.sock = unixsock.File{}
	l.engine.mu.Unlock()
}

func (l *Listener) closeSocket() {
	if l.fd >= 0 {
		_ = unix.Close(l.fd)
		l.fd = -1
	}
	l.engine.mu.Lock()
	sock := l.sock
	l.sock = unixsock.File{}
	l.engine.mu.Unlock()
	if err := sock.Remove(); err != nil {
		l.log.Warn("socket file left in place", "error", err)
	}
}

// stopModule runs the module's Stop once.
func (l *Listener) stopModule() {
	l.stopOnce.Do(func() {
		if s, ok := l.spec.Module.(api.Stopper); ok {
			if err := s.Stop(); err != nil {
				l.log.Warn("module stop failed", "error", err)
			}
		}
	})
}

// bindSocket creates, binds and (for tcp) listens on a tcp or udp socket;
// unix sockets are made by bindUnix, which sets their file's mode and
// owner.
func bindSocket(network, addr string) (int, error) {
	domain, sa, err := inetSockaddr(network, addr, false)
	if err != nil {
		return -1, err
	}
	typ := unix.SOCK_STREAM
	if strings.HasPrefix(network, "udp") {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	fail := func(op string, err error) (int, error) {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("%s %s %s: %w", op, network, addr, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if domain == unix.AF_INET6 {
		// tcp6:// means IPv6 only; tcp:// on [::] takes both families.
		v6only := 0
		if strings.HasSuffix(network, "6") {
			v6only = 1
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, unixsock.Backlog()); err != nil {
			return fail("listen", err)
		}
	}
	return fd, nil
}

// Bind creates and binds a listening socket for network and address, as
// Listen would, and returns it as a file for ListenerSpec.File: a reload
// binds every new address before it changes anything.
func Bind(network, address string) (*os.File, error) {
	if network == "unix" {
		return BindListener(ListenerSpec{Network: network, Address: address})
	}
	fd, err := bindSocket(network, address)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), network+"://"+address), nil
}

// adoptSocket takes over an inherited socket: dup it (the caller keeps its
// *os.File) and make the dup non-blocking.
func adoptSocket(f *os.File, family string) (int, error) {
	fd, err := dupCloexec(int(f.Fd()))
	if err != nil {
		return -1, fmt.Errorf("adopt %s: %w", f.Name(), err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("adopt %s: not a socket: %w", f.Name(), err)
	}
	if (family == "stream") != (typ == unix.SOCK_STREAM) {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("adopt %s: socket type does not match the listener's network", f.Name())
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("adopt %s: %w", f.Name(), err)
	}
	return fd, nil
}

// inetSockaddr resolves the host:port of a tcp or udp address by the
// rules of package address, for a socket to bind or (dial) to connect,
// and returns the socket's domain and address. A zone (fe80::1%eth0)
// names the interface of a link-local address, by name or index.
func inetSockaddr(network, hostport string, dial bool) (int, unix.Sockaddr, error) {
	resolve := address.ResolveListen
	if dial {
		resolve = address.ResolveDial
	}
	ap, err := resolve(network, hostport)
	if err != nil {
		return 0, nil, err
	}
	ip := ap.Addr()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if zone := ip.Zone(); zone != "" {
		if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return 0, nil, fmt.Errorf("address %q: no interface %q on this machine", hostport, zone)
		}
	}
	return unix.AF_INET6, sa, nil
}

// boundAddress reads back the address the kernel bound, so that port 0
// shows as the port actually chosen.
func boundAddress(fd int, network string) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return network + "://" + netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrInet6:
		return network + "://" + netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrUnix:
		return "unix://" + a.Name, nil
	}
	return "", fmt.Errorf("unexpected socket address %T", sa)
}
