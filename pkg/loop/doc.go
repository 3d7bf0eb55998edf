// Package loop is netd's event engine: epoll, listening sockets,
// connections, output queues and timers. It knows modules only through the
// contract in pkg/modules/api.
//
// # Types
//
// An Engine owns N event loops (one per CPU core by default) and the
// listeners. A Listener is one bound socket (tcp, udp or unix) and the module
// instance that serves it. An eventLoop is one goroutine around one epoll
// instance; every connection belongs to exactly one loop for its whole life,
// and only that loop touches it, so a connection needs no lock.
//
// # Life cycle
//
// New creates the loops (not yet running). Listen binds a socket; nothing is
// served until Start, so a daemon binds every listener first and fails
// before serving anything when one address is taken. Start runs the loops
// and registers every listener with them. Listen and Listener.Close may also
// be called while running (reload). Shutdown stops accepting, drains every
// connection (see "Backpressure and drain" below) and stops the loops once
// none is left or its context ends, whichever comes first.
//
// # Threading
//
// A stream listener's socket is registered in every loop with
// EPOLLEXCLUSIVE: the kernel wakes one loop per incoming connection and
// that loop accepts it. One socket shared by the loops, rather than one
// SO_REUSEPORT socket per loop or one acceptor handing connections out,
// is kept because it is also the one thing systemd activation, upgrades
// and reloads hand over, and the alternatives did no better (measurements
// in docs/BENCHMARKS.md, "Appendix: notes moved from pkg/loop's comments").
// The kernel wakes the first loop waiting in the socket's wait queue, so a
// loop that serves more accepted connections than the least busy one moves
// its registration to the back of that queue (acceptor.giveWay).
//
// A datagram socket belongs to one loop. Other goroutines reach a loop only
// through its task queue (Submit), which wakes it through an eventfd.
// Counters are atomics that any goroutine may read. Each exported method
// says in its doc whether it may be called from any goroutine or only on
// the loop (from a module callback or a Submit task).
//
// # Level-triggered
//
// The loop uses epoll in level-triggered mode. It reads once per readiness
// event and lets epoll report the socket again if more is waiting, which
// keeps one busy connection from starving the others without any bookkeeping
// of its own. EPOLLOUT is in a connection's interest set only while output
// is queued (or the module asked for OnWritable), so an idle connection
// costs no wake-ups. Edge-triggered mode would save an epoll_ctl when output
// queues, but would force reading every socket to EAGAIN on each event and
// make a lost edge a hung connection; level-triggered has no such failure.
//
// # Memory
//
// Each loop has one read buffer. A module sees the bytes it has not consumed
// (Conn.Inbound); only what it leaves behind is copied into the connection.
// A write goes straight to the kernel; only what the kernel does not take is
// copied into pooled chunks and later sent with writev. An idle connection
// holds no buffer at all.
//
// # Backpressure and drain
//
// When a connection's queued output passes the listener's high watermark
// the loop stops reading from it, and resumes once the queue falls below
// the low watermark: a client that sends without reading cannot make the
// daemon buffer without bound. A graceful close flushes queued output,
// half-closes, and waits (bounded by a linger deadline) for the peer's
// end-of-file before closing, so that unread input cannot turn the close
// into a reset that destroys the output just sent.
//
// # TLS
//
// A listener with ListenerSpec.TLS terminates TLS in the loop (tls.go);
// modules see plaintext through the same api.Conn, and api.Conn.TLS tells
// them what was negotiated. crypto/tls cannot resume a handshake after a
// would-block error (its handshake error is sticky), so the handshake runs
// on a goroutine over an in-memory transport: the loop hands it the
// ciphertext it reads and sends what it writes. The goroutine starts only
// once the client's first record is complete, holds one of GOMAXPROCS
// compute slots only while it computes, and ends with the handshake; a
// connection that finds no slot waits in a queue without one
// (tls_pool.go). Then the connection is the loop's alone, with no
// goroutine: after the handshake crypto/tls does not make a temporary
// net.Error sticky, so a read hands it the bytes just read and decrypts
// until it reports "would block", keeping a partial record for the next
// read; a module's Write encrypts into the loop's scratch and leaves in
// one write. close_notify precedes a half-close or close.
//
// Chosen over a goroutine per connection for memory: with 10,000 idle TLS
// connections the stdlib's goroutine-per-connection echo grew by 42.6 kB
// of RSS per connection (23.9 kB heap, 8.2 kB stack), netd by 12.2 kB
// (7.1 kB heap, no goroutine). CPU per echoed line, client included and
// on a loaded machine: ping-pong 33 µs against the stdlib's 21 µs,
// pipelined 2.0 µs against 1.5 µs; handshakes 358/s against 265/s
// (pkg/modules/echo/tls_bench_test.go says how to run them).
package loop
