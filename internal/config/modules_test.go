package config

import (
	"errors"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/pkg/modules/api"
)

// Private modules, so that these tests need no real module package.
func init() {
	api.Register(api.Info{Name: "test-echo", Description: "stream and packet, mode and max_line_bytes", New: func() api.Module { return &testEcho{} }})
	api.Register(api.Info{Name: "test-stream", Description: "stream only, every option type", New: func() api.Module { return &testStream{} }})
	api.Register(api.Info{Name: "test-packet", Description: "packet only, no options", New: func() api.Module { return &testPacket{} }})
	api.Register(api.Info{Name: "test-fail", Description: "Provision fails with a plain error", New: func() api.Module { return &testFail{} }})
	api.Register(api.Info{Name: "test-panic", Description: "Provision panics", New: func() api.Module { return &testPanic{} }})
	api.Register(api.Info{Name: "test-metrics", Description: "registers a counter", New: func() api.Module { return &testMetrics{} }})
}

// testMetrics registers a counter of its own, as a module with metrics does.
type testMetrics struct {
	streamBase
	served prometheus.Counter
}

func (m *testMetrics) Provision(s api.Setup) error {
	var err error
	m.served, err = api.RegisterMetric(s.Metrics, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netd_test_served_total", Help: "Connections served.",
	}))
	return err
}

type streamBase struct{}

func (streamBase) OnAccept(api.Conn)                                 {}
func (streamBase) OnReadable(api.Conn)                               {}
func (streamBase) OnWritable(api.Conn)                               {}
func (streamBase) OnClose(api.Conn, api.Reason, error)               {}
func (streamBase) OnPacket(api.PacketWriter, []byte, netip.AddrPort) {}

type echoOptions struct {
	Mode         string `option:"mode"`
	MaxLineBytes int    `option:"max_line_bytes"`
}

type testEcho struct {
	streamBase
	setup api.Setup
	opts  echoOptions
}

func (m *testEcho) Provision(s api.Setup) error {
	m.setup = s
	m.opts = echoOptions{Mode: "line", MaxLineBytes: 65536}
	if err := s.Options.Decode(&m.opts); err != nil {
		return err
	}
	if m.opts.Mode != "line" && m.opts.Mode != "raw" {
		return s.Options.Errorf("mode", "want line or raw, got %q", m.opts.Mode)
	}
	if m.opts.MaxLineBytes < 1 {
		return s.Options.Errorf("max_line_bytes", "must be at least 1, got %d", m.opts.MaxLineBytes)
	}
	return nil
}

// streamOptions has a field of every type Decode supports.
type streamOptions struct {
	Name    string            `option:"name"`
	Count   int               `option:"count"`
	Small   int8              `option:"small"`
	Port    uint16            `option:"port"`
	Ratio   float64           `option:"ratio"`
	Timeout time.Duration     `option:"timeout"`
	Enabled bool              `option:"enabled"`
	List    []string          `option:"list"`
	Env     map[string]string `option:"env"`
	Ptr     *int              `option:"ptr"`
	Ignored string
}

type testStream struct {
	opts streamOptions
}

func (testStream) OnAccept(api.Conn)                   {}
func (testStream) OnReadable(api.Conn)                 {}
func (testStream) OnWritable(api.Conn)                 {}
func (testStream) OnClose(api.Conn, api.Reason, error) {}

func (m *testStream) Provision(s api.Setup) error {
	return s.Options.Decode(&m.opts)
}

type testPacket struct{}

func (testPacket) OnPacket(api.PacketWriter, []byte, netip.AddrPort) {}

func (*testPacket) Provision(s api.Setup) error {
	return s.Options.Decode(&struct{}{})
}

type testFail struct{ streamBase }

func (*testFail) Provision(api.Setup) error { return errors.New("backend unreachable") }

type testPanic struct{ streamBase }

func (*testPanic) Provision(api.Setup) error { panic("boom") }
