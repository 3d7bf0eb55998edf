package loop

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/api"
)

// lineEcho is a test module: line echo, as the echo module does it, plus
// hooks that tests set.
type lineEcho struct {
	closed chan api.Reason
}

func (m *lineEcho) Provision(api.Setup) error { return nil }
func (m *lineEcho) OnAccept(api.Conn)         {}
func (m *lineEcho) OnReadable(c api.Conn) {
	in := c.Inbound()
	if c.InputClosed() {
		_, _ = c.Write(in)
		c.Consume(len(in))
		_ = c.Close()
		return
	}
	if i := bytes.LastIndexByte(in, '\n'); i >= 0 {
		_, _ = c.Write(in[:i+1])
		c.Consume(i + 1)
	}
}
func (m *lineEcho) OnWritable(api.Conn) {}
func (m *lineEcho) OnClose(_ api.Conn, r api.Reason, _ error) {
	if m.closed != nil {
		select {
		case m.closed <- r:
		default:
		}
	}
}
func (m *lineEcho) OnPacket(w api.PacketWriter, p []byte, from netip.AddrPort) {
	_ = w.WriteTo(p, from)
}

// startEngine runs an engine with one listener and stops it at cleanup.
func startEngine(t *testing.T, cfg Config, spec ListenerSpec) (*Engine, *Listener) {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Listen(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e, l
}

// dial connects to a listener's bound address (testutil.Dial).
func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	return testutil.Dial(t, l.Addr())
}

func unixPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "s.sock")
}
