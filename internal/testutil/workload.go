package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"time"
)

// Session writes payload to c in random fragments while it reads,
// half-closes c, and checks that exactly want comes back before EOF. The
// fragments, drawn from seed, are up to maxFrag bytes, one in eight of
// them up to 8 bytes, and one in four is followed by a 1ms pause so that
// they reach the server in separate reads. It returns an error rather
// than failing a test so that it can run in a client goroutine.
func Session(c net.Conn, payload, want []byte, seed int64, maxFrag int) error {
	rng := rand.New(rand.NewSource(seed))
	got := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(c)
		got <- b
		errc <- err
	}()
	for rest := payload; len(rest) > 0; {
		n := min(1+rng.Intn(maxFrag), len(rest))
		if rng.Intn(8) == 0 {
			n = min(1+rng.Intn(8), len(rest))
		}
		if _, err := c.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
		if rng.Intn(4) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := HalfClose(c); err != nil {
		return err
	}
	b := <-got
	if err := <-errc; err != nil {
		return fmt.Errorf("seed %d: read: %w after %d bytes", seed, err, len(b))
	}
	if !bytes.Equal(b, want) {
		i := 0
		for i < len(b) && i < len(want) && b[i] == want[i] {
			i++
		}
		return fmt.Errorf("seed %d: got %d bytes, want %d; first difference at %d", seed, len(b), len(want), i)
	}
	return nil
}

// HostileCycle is one connection of a hostile burst against a line-echo
// listener at addr (as SplitAddr reads it), of kind i%6: connect and go;
// one round trip, then reset; half-close, and everything (the
// unterminated tail too) must come back; reset in the middle of a large
// write with echoes queued; a partial line, then close; a large echo
// never read, so the close has unread input (RST). Only the kinds that
// expect an answer can return an error.
func HostileCycle(addr string, i int) error {
	network, address := SplitAddr(addr)
	c, err := net.DialTimeout(network, address, DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	reset := func() {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	switch i % 6 {
	case 0:
		return nil
	case 1:
		line := fmt.Sprintf("line %d\n", i)
		if _, err := io.WriteString(c, line); err != nil {
			return err
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != line {
			return fmt.Errorf("round trip: %q, %v", got, err)
		}
		reset()
		return nil
	case 2:
		want := fmt.Sprintf("a %d\nb\nunterminated %d", i, i)
		if _, err := io.WriteString(c, want); err != nil {
			return err
		}
		if err := HalfClose(c); err != nil {
			return err
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != want {
			return fmt.Errorf("half-close: got %q, %v; want %q", got, err, want)
		}
		return nil
	case 3:
		reset()
		_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = c.Write(bytes.Repeat([]byte("mid-write\n"), 16<<10))
		return nil
	case 4:
		_, _ = io.WriteString(c, "partial line without end")
		return nil
	default:
		_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = c.Write(bytes.Repeat([]byte("unread echo line\n"), 4<<10))
		_, _ = c.Read(make([]byte, 10))
		return nil
	}
}
