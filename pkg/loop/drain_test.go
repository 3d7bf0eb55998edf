package loop

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// TestShutdownDrains: lines a client sent before Shutdown still come back,
// then the server closes and Shutdown returns without waiting out its
// context.
func TestShutdownDrains(t *testing.T) {
	e, err := New(Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	testutil.RoundTrip(t, c, "warm\n")
	want := bytes.Repeat([]byte("in flight\n"), 1000)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the bytes reach the server's socket
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- e.Shutdown(ctx) }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after shutdown got %d bytes back, want %d", len(got), len(want))
	}
	c.Close() // the server lingers for our EOF
	if err := <-shutdownErr; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	// The listener is gone: connects are refused.
	if _, err := e.Listen(ListenerSpec{Name: "x", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}}); err == nil {
		t.Fatal("Listen after Shutdown succeeded")
	}
}

// TestShutdownTimeout: a client that never reads cannot hold the daemon
// past the shutdown deadline.
func TestShutdownTimeout(t *testing.T) {
	e, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &lineEcho{}, HighWatermark: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	line := append(bytes.Repeat([]byte("y"), 4095), '\n')
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	for {
		if _, err := c.Write(line); err != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a connection that never drained")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v past a 500ms deadline", d)
	}
	if n := e.ActiveConnections(); n != 0 {
		t.Fatalf("%d connections left after Shutdown", n)
	}
}

// drainEcho answers its partial line on drain, as the echo module does:
// Inbound must work outside OnReadable.
type drainEcho struct{ lineEcho }

func (m *drainEcho) OnDrain(c api.Conn) {
	in := c.Inbound()
	_, _ = c.Write(in)
	c.Consume(len(in))
	_ = c.Close()
}

func TestDrainSeesKeptInput(t *testing.T) {
	e, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &drainEcho{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	testutil.RoundTrip(t, c, "abc\n")
	if _, err := c.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = e.Shutdown(ctx) }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "partial" {
		t.Fatalf("got %q, %v; want the partial line back", got, err)
	}
	c.Close()
}

// endlessSender writes whenever the socket takes more, as chargen does.
type endlessSender struct{ lineEcho }

func (m *endlessSender) OnAccept(c api.Conn) { c.WantWritable(true) }
func (m *endlessSender) OnWritable(c api.Conn) {
	_, _ = c.Write(bytes.Repeat([]byte("x"), 4096))
}

// TestDrainEndsForASender: a connection whose module only sends, to a
// client that reads all it gets and sends nothing, is quiet for the drain:
// it is closed gracefully (the client reads end-of-file) and Shutdown
// returns without waiting out its context. Output progress used to count
// as activity, which held the drain until the context ended.
func TestDrainEndsForASender(t *testing.T) {
	e, err := New(Config{Loops: 1, LingerQuiet: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(ListenerSpec{Name: "t", Network: "tcp", Address: "127.0.0.1:0", Module: &endlessSender{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c) // until end-of-file, or the dial's 10 s deadline
		readDone <- err
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the drain waited for a sender to go quiet)", err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("the client did not read end-of-file: %v", err)
	}
}
