// Package apitest fakes the loop side of netd's module contract
// (pkg/modules/api), so that a module can be tested without sockets, as
// net/http/httptest does for HTTP handlers.
//
// A Conn plays the loop and the kernel around one stream connection: the test
// feeds it the client's bytes (Feed, FeedSplit, FeedEOF), lets the client read
// (Drain), and inspects what the module did (Written, Unconsumed, Closed,
// Reason, Paused). A PacketWriter does the same for datagrams, and a Loop
// stands in for api.Loop, running submitted functions when the test calls
// RunPending. The Loop also fakes the loop's outbound side: Dial returns a
// Conn that connects when the test calls Connect (or fails with Fail),
// Attach wraps a descriptor in a Conn, and Watch records a function the
// test runs with Fire. Everything runs on the test's goroutine,
// synchronously, so a test reads like the exchange it checks.
//
// The fakes follow the contract as netd's loop implements it, and are
// stricter where the loop only copes: consuming more than Inbound holds, or
// calling a loop-only method from outside a callback (from a goroutine of
// the module's own, say), is a violation. With WithT a violation fails the
// test; without it, it panics.
//
// What the fakes do not model: the linger after a graceful close (the fake
// closes as soon as the queued output is flushed), idle timeouts (call
// Terminate), and the loop calling OnWritable unprompted (call Drain).
package apitest
