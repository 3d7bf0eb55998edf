package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from what Load returns")

// comparable strips what legitimately differs between a YAML file and its
// HCL twin: the file name, positions, instances, loaded TLS configurations
// and options (compared through Map).
func comparable(c *Config) (*Config, []map[string]any) {
	out := *c
	out.File = ""
	out.Listeners = append([]Listener(nil), c.Listeners...)
	var opts []map[string]any
	for i := range out.Listeners {
		l := &out.Listeners[i]
		opts = append(opts, l.Options.Map())
		l.Pos = Pos{}
		l.Instance = nil
		l.Options = nil
		if l.TLS != nil {
			t := *l.TLS
			t.Server = nil
			l.TLS = &t
		}
	}
	return &out, opts
}

func TestGoodTwins(t *testing.T) {
	yamls, _ := filepath.Glob(filepath.Join(goodDir(t), "*.yaml"))
	if len(yamls) == 0 {
		t.Fatal("no testdata/good/*.yaml")
	}
	for _, yp := range yamls {
		hp := strings.TrimSuffix(yp, ".yaml") + ".hcl"
		t.Run(filepath.Base(yp), func(t *testing.T) {
			yc, err := Load(yp, nil)
			if err != nil {
				t.Fatalf("Load(%s): %v", yp, err)
			}
			hc, err := Load(hp, nil)
			if err != nil {
				t.Fatalf("Load(%s): %v", hp, err)
			}
			if yc.File != yp || hc.File != hp {
				t.Errorf("File = %q, %q", yc.File, hc.File)
			}
			for _, c := range []*Config{yc, hc} {
				for _, l := range c.Listeners {
					if l.Instance == nil || l.Options == nil || l.Pos.Line == 0 {
						t.Errorf("%s: listener %q: Instance %v, Options %v, Pos %v", c.File, l.Name, l.Instance, l.Options, l.Pos)
					}
					if l.TLS != nil && l.TLS.Server == nil {
						t.Errorf("%s: listener %q: tls block without its loaded configuration", c.File, l.Name)
					}
				}
			}
			y, yo := comparable(yc)
			h, ho := comparable(hc)
			if !reflect.DeepEqual(y, h) {
				t.Errorf("YAML and HCL differ:\nyaml %+v\nhcl  %+v", y, h)
			}
			if !reflect.DeepEqual(yo, ho) {
				t.Errorf("options differ:\nyaml %#v\nhcl  %#v", yo, ho)
			}
		})
	}
}

func TestFull(t *testing.T) {
	dir := goodDir(t)
	for _, path := range []string{filepath.Join(dir, "full.yaml"), filepath.Join(dir, "full.hcl")} {
		t.Run(path, func(t *testing.T) {
			c, err := Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, opts := comparable(c)
			want := &Config{
				Log:             Log{Level: "debug", Format: "json"},
				Loops:           4,
				ShutdownTimeout: 30 * time.Second,
				DrainDelay:      5 * time.Second,
				MaxConnections:  50000,
				User:            "netd",
				Group:           "netd",
				AccessLog:       true,
				Admin: &Admin{Address: "unix:///run/netd/admin.sock", Addr: Address{Scheme: "unix", Path: "/run/netd/admin.sock"},
					Mode: 0o660, User: "netd", Group: "adm", Reload: true, Pprof: true},
				Listeners: []Listener{
					{Name: "echo", Address: "tcp://127.0.0.1:8888", Module: "test-echo",
						Addr: Address{Scheme: "tcp", Host: "127.0.0.1:8888"}, MaxConnections: 10000, IdleTimeout: 5 * time.Minute,
						HighWatermark: 4 << 20, LowWatermark: 1 << 20,
						ProxyProtocol: &proxyproto.Policy{Mode: proxyproto.Optional, Trusted: access.MustParseSet("10.0.0.0/8", "::1"), Timeout: 2 * time.Second},
						Allow:         access.MustParseSet("0.0.0.0/0", "::/0"), Deny: access.MustParseSet("192.0.2.0/24"),
						MaxPerSource: 100, Rate: 50, Burst: 200,
						TLS: &TLS{CertFile: "tls/server.pem", KeyFile: "tls/server-key.pem", ClientCAFile: "tls/ca.pem",
							MinVersion: "1.3", ALPN: []string{"h2", "netd"}, HandshakeTimeout: 5 * time.Second}},
					{Name: "echo6", Address: "tcp6://[::1]:8888", Module: "test-echo",
						Addr: Address{Scheme: "tcp6", Host: "[::1]:8888"}, AccessLog: true, MaxConnections: DefaultMaxConnections},
					{Name: "echo-udp", Address: "udp://:7", Module: "test-echo",
						Addr: Address{Scheme: "udp", Host: ":7"}, UDPAmplification: true, MaxConnections: 0},
					{Name: "local", Address: "unix:///run/netd/stream.sock", Module: "test-stream",
						Addr: Address{Scheme: "unix", Path: "/run/netd/stream.sock"}, AccessLog: true, MaxConnections: DefaultMaxConnections,
						SocketMode: 0o660, SocketUser: "netd", SocketGroup: "65534"},
					{Name: "activated", Address: "fd://web", Module: "test-stream",
						Addr: Address{Scheme: "fd", Path: "web"}, AccessLog: true, MaxConnections: DefaultMaxConnections},
					{Name: "packets", Address: "udp4://0.0.0.0:0", Module: "test-packet",
						Addr: Address{Scheme: "udp4", Host: "0.0.0.0:0"}, MaxConnections: DefaultMaxConnections},
				},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			wantOpts := []map[string]any{
				{"mode": "line", "max_line_bytes": int64(65536)},
				{},
				{"mode": "raw"},
				{"name": "local socket", "count": int64(-3), "small": int64(127), "port": int64(65535),
					"ratio": 0.25, "timeout": "1m30s", "enabled": false, "list": []any{"a", "b c", ""},
					"env": map[string]any{"PATH": "/usr/bin", "LANG": "C.UTF-8"}, "ptr": int64(7)},
				{},
				{},
			}
			if !reflect.DeepEqual(opts, wantOpts) {
				t.Errorf("options\ngot  %#v\nwant %#v", opts, wantOpts)
			}

			// What the modules saw.
			echo := c.Listeners[0].Instance.(*testEcho)
			if echo.opts != (echoOptions{Mode: "line", MaxLineBytes: 65536}) || echo.setup.Listener != "echo" ||
				echo.setup.Network != "tcp" || echo.setup.Address != "tcp://127.0.0.1:8888" || echo.setup.Logger == nil || echo.setup.Options != c.Listeners[0].Options {
				t.Errorf("echo module got %+v, setup %+v", echo.opts, echo.setup)
			}
			if n := c.Listeners[2].Instance.(*testEcho).setup.Network; n != "udp" {
				t.Errorf("echo-udp Network = %q", n)
			}
			seven := 7
			wantStream := streamOptions{Name: "local socket", Count: -3, Small: 127, Port: 65535, Ratio: 0.25,
				Timeout: 90 * time.Second, List: []string{"a", "b c", ""},
				Env: map[string]string{"PATH": "/usr/bin", "LANG": "C.UTF-8"}, Ptr: &seven}
			if s := c.Listeners[3].Instance.(*testStream).opts; !reflect.DeepEqual(s, wantStream) {
				t.Errorf("stream module got %+v\nwant %+v", s, wantStream)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/good/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ShutdownTimeout != DefaultShutdownTimeout || c.Admin != nil || c.Log != (Log{}) || c.Loops != 0 || c.DrainDelay != 0 {
		t.Errorf("defaults: %+v", c)
	}
	l := c.Listeners[0]
	if l.Options == nil || len(l.Options.Map()) != 0 || l.Pos != (Pos{Line: 2, Column: 5}) {
		t.Errorf("listener: %+v", l)
	}
	// A listener without max_connections is capped; 0 asks for no cap.
	if l.MaxConnections != DefaultMaxConnections || DefaultMaxConnections != 10000 {
		t.Errorf("max_connections by default = %d, want 10000", l.MaxConnections)
	}
	if l.SocketMode != 0 || l.SocketUser != "" || l.SocketGroup != "" {
		t.Errorf("socket file settings by default: %+v", l)
	}
}

// TestBad loads each file in testdata/bad and compares the error with the
// file's .err twin. Run with -update to rewrite them, then read the diff.
func TestBad(t *testing.T) {
	paths, _ := filepath.Glob("testdata/bad/*.*")
	n := 0
	for _, path := range paths {
		if strings.HasSuffix(path, ".err") {
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path, nil)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Load returned a Config with its error")
			}
			got := err.Error()
			if *update {
				if err := os.WriteFile(path+".err", []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(path + ".err")
			if rerr != nil {
				t.Fatalf("%v (got:\n%s)", rerr, got)
			}
			if got != strings.TrimRight(string(want), "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not Errors", err)
			}
			for i := 1; i < len(es); i++ {
				if es[i].Pos.Before(es[i-1].Pos) {
					t.Errorf("errors not sorted: %v before %v", es[i-1].Pos, es[i].Pos)
				}
			}
			for _, e := range es {
				if e.File != path || e.Pos.Line < 1 || e.Pos.Column < 1 || strings.Contains(e.Msg, "\n") {
					t.Errorf("badly formed error %q", e.Error())
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no testdata/bad files")
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load("testdata/nonexistent.yaml", nil)
	if err == nil || err.Error() != "open testdata/nonexistent.yaml: no such file or directory" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load("netd.toml", nil)
	if err == nil || err.Error() != `netd.toml: unknown config format ".toml": want .yaml, .yml or .hcl` {
		t.Errorf("unknown extension: %v", err)
	}
	_, err = Parse("netd", nil, nil)
	if err == nil || err.Error() != `netd: unknown config format "": want .yaml, .yml or .hcl` {
		t.Errorf("no extension: %v", err)
	}
	// .yml and upper case extensions are YAML too.
	src, _ := os.ReadFile("testdata/good/minimal.yaml")
	for _, name := range []string{"x.yml", "X.YAML"} {
		if _, err := Parse(name, src, nil); err != nil {
			t.Errorf("Parse(%s): %v", name, err)
		}
	}
}

// TestModuleErrorWrapping checks that an error a module wraps with %w
// stays reachable, and that errors.As finds every *Error.
func TestModuleErrorWrapping(t *testing.T) {
	_, err := Parse("x.yaml", []byte("listeners:\n  - {name: a, address: 'tcp://:1', module: test-fail}\n"), nil)
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{Line: 2, Column: 5}) || e.Msg != `listener "a": module test-fail: backend unreachable` {
		t.Fatalf("got %v", err)
	}
	if e.Unwrap() == nil || e.Unwrap().Error() != "backend unreachable" {
		t.Errorf("Unwrap = %v", e.Unwrap())
	}
}

// TestModuleMetrics: an instance's collectors carry its module and
// listener labels, and the instance a reload makes for the same listener
// goes on counting in the same counter.
func TestModuleMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := []byte("listeners:\n  - {name: a, address: tcp://127.0.0.1:1, module: test-metrics}\n  - {name: b, address: tcp://127.0.0.1:2, module: test-metrics}\n")
	load := func() *Config {
		t.Helper()
		c, err := ParseEnv("m.yaml", src, Env{Metrics: func(string, string) prometheus.Registerer { return reg }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := load()
	first.Listeners[0].Instance.(*testMetrics).served.Add(2)
	first.Listeners[1].Instance.(*testMetrics).served.Add(5)
	reloaded := load()
	reloaded.Listeners[0].Instance.(*testMetrics).served.Inc()

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "netd_test_served_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["module"] != "test-metrics" {
				t.Errorf("series without module label: %v", labels)
			}
			got[labels["listener"]] = m.GetCounter().GetValue()
		}
	}
	if got["a"] != 3 || got["b"] != 5 || len(got) != 2 {
		t.Errorf("netd_test_served_total by listener = %v, want a=3 b=5", got)
	}
}

// TestListenerMetrics: each instance registers in the registerer
// Env.Metrics gives for its own module and listener, under the module and
// listener labels.
func TestListenerMetrics(t *testing.T) {
	own := map[string]*prometheus.Registry{}
	src := []byte("listeners:\n  - {name: a, address: tcp://127.0.0.1:1, module: test-metrics}\n  - {name: b, address: tcp://127.0.0.1:2, module: test-metrics}\n")
	_, err := ParseEnv("m.yaml", src, Env{
		Metrics: func(module, listener string) prometheus.Registerer {
			if module != "test-metrics" {
				t.Errorf("asked for listener %q with module %q", listener, module)
			}
			own[listener] = prometheus.NewRegistry()
			return own[listener]
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(own) != 2 {
		t.Fatalf("asked for the registerers of %d listeners, want 2 (a, b)", len(own))
	}
	for name, reg := range own {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(fams) != 1 || len(fams[0].GetMetric()) != 1 {
			t.Fatalf("listener %s's registry: %v, want its one counter", name, fams)
		}
		labels := map[string]string{}
		for _, lp := range fams[0].GetMetric()[0].GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["listener"] != name || labels["module"] != "test-metrics" {
			t.Errorf("listener %s's counter has labels %v", name, labels)
		}
	}
}
