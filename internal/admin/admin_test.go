package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/loop"
	"github.com/netd/netd/pkg/modules/api"
)

// fakeSource is a Source the test changes at will.
type fakeSource struct {
	mu        sync.Mutex
	listeners []ListenerSnapshot
	loops     []LoopSnapshot
	ready     bool
	draining  bool
}

func (f *fakeSource) Listeners() []ListenerSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ListenerSnapshot(nil), f.listeners...)
}
func (f *fakeSource) Loops() []LoopSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LoopSnapshot(nil), f.loops...)
}
func (f *fakeSource) Ready() bool    { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }
func (f *fakeSource) Draining() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.draining }
func (f *fakeSource) set(fn func(*fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// start runs a Server on 127.0.0.1:0 and stops it at the end of the test.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return s
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// do sends one request to s and returns the status and body.
func do(t *testing.T, s *Server, method, path string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches /metrics and parses it as the Prometheus text format.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := do(t, s, "GET", "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not valid exposition: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the metric in family name whose labels
// include want, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func expect(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(fams, name, labels)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetrics(t *testing.T) {
	src := &fakeSource{
		listeners: []ListenerSnapshot{
			{Name: "echo", Accepted: 5, Active: 2, BytesIn: 100, BytesOut: 90, ReadsPaused: 1, AcceptErrors: 3,
				Closed: map[string]uint64{"client": 2, "idle_timeout": 1}, Refused: map[string]uint64{"denied": 4, "rate": 1}},
			{Name: "udp", DatagramsIn: 7, DatagramsOut: 6, Dropped: 1, BytesIn: 70, BytesOut: 60},
		},
		loops: []LoopSnapshot{{ID: 0, Events: 10, Busy: 1500 * time.Millisecond}, {ID: 1, Events: 20, Connections: 3}},
	}
	s := start(t, Config{Source: src, Version: "v1.2.3", Commit: "abc123"})
	s.Metrics().ConfigLoaded("hash1", time.Unix(1700000000, 0))

	fams := scrape(t, s)
	echo := map[string]string{"listener": "echo"}
	udp := map[string]string{"listener": "udp"}
	expect(t, fams, "netd_connections_accepted_total", echo, 5)
	expect(t, fams, "netd_connections_active", echo, 2)
	expect(t, fams, "netd_connections_closed_total", map[string]string{"listener": "echo", "reason": "client"}, 2)
	expect(t, fams, "netd_connections_closed_total", map[string]string{"listener": "echo", "reason": "idle_timeout"}, 1)
	for _, r := range []string{"over_limit", "line_too_long", "error", "shutdown", "done"} {
		expect(t, fams, "netd_connections_closed_total", map[string]string{"listener": "echo", "reason": r}, 0)
	}
	expect(t, fams, "netd_connections_refused_total", map[string]string{"listener": "echo", "reason": "denied"}, 4)
	expect(t, fams, "netd_connections_refused_total", map[string]string{"listener": "echo", "reason": "rate"}, 1)
	for _, r := range []string{"per_source", "over_limit", "proxy_protocol"} {
		expect(t, fams, "netd_connections_refused_total", map[string]string{"listener": "echo", "reason": r}, 0)
	}
	expect(t, fams, "netd_bytes_received_total", echo, 100)
	expect(t, fams, "netd_bytes_sent_total", echo, 90)
	expect(t, fams, "netd_reads_paused_total", echo, 1)
	expect(t, fams, "netd_accept_errors_total", echo, 3)
	expect(t, fams, "netd_datagrams_received_total", udp, 7)
	expect(t, fams, "netd_datagrams_sent_total", udp, 6)
	expect(t, fams, "netd_datagrams_dropped_total", udp, 1)
	expect(t, fams, "netd_loop_events_total", map[string]string{"loop": "0"}, 10)
	expect(t, fams, "netd_loop_busy_seconds_total", map[string]string{"loop": "0"}, 1.5)
	expect(t, fams, "netd_loop_events_total", map[string]string{"loop": "1"}, 20)
	expect(t, fams, "netd_loop_connections", map[string]string{"loop": "1"}, 3)
	expect(t, fams, "netd_reloads_total", map[string]string{"result": "ok"}, 0)
	expect(t, fams, "netd_reloads_total", map[string]string{"result": "failed"}, 0)
	expect(t, fams, "netd_config_info", map[string]string{"hash": "hash1"}, 1)
	expect(t, fams, "netd_config_last_reload_timestamp_seconds", nil, 1700000000)
	expect(t, fams, "netd_config_last_reload_successful", nil, 1)
	expect(t, fams, "netd_build_info", map[string]string{"version": "v1.2.3", "commit": "abc123", "goversion": runtime.Version()}, 1)
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "process_open_fds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: no Go or process collector", name)
		}
	}
	if f := fams["netd_connections_accepted_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("netd_connections_accepted_total is %v, want a counter", f.GetType())
	}
	if f := fams["netd_connections_active"]; f.GetType() != dto.MetricType_GAUGE {
		t.Errorf("netd_connections_active is %v, want a gauge", f.GetType())
	}

	// The source moves on: a reload replaced echo (the old one's final
	// counts stand next to its successor's under the same name), added
	// raw, and a module closed for its own reason.
	src.set(func(f *fakeSource) {
		f.listeners = []ListenerSnapshot{
			{Name: "echo", Accepted: 5, BytesIn: 100, BytesOut: 90, ReadsPaused: 1, AcceptErrors: 3,
				Closed: map[string]uint64{"client": 4, "idle_timeout": 1}, Refused: map[string]uint64{"denied": 4, "rate": 1}},
			{Name: "udp", DatagramsIn: 8, DatagramsOut: 7, Dropped: 1, BytesIn: 80, BytesOut: 70},
			{Name: "echo", Accepted: 3, Active: 1, BytesIn: 10, BytesOut: 10,
				Closed: map[string]uint64{"client": 1, "upstream_failed": 1}, Refused: map[string]uint64{"denied": 2}},
			{Name: "raw", Accepted: 1, Active: 1},
		}
	})
	s.Metrics().Reloaded("hash2", time.Unix(1700000100, 0), nil)
	s.Metrics().Reloaded("", time.Unix(1700000200, 0), errors.New("bad config"))
	s.Metrics().Reloaded("", time.Unix(1700000300, 0), errors.New("bad config"))

	fams = scrape(t, s)
	expect(t, fams, "netd_connections_accepted_total", echo, 8)
	expect(t, fams, "netd_connections_active", echo, 1)
	expect(t, fams, "netd_connections_closed_total", map[string]string{"listener": "echo", "reason": "client"}, 5)
	expect(t, fams, "netd_connections_closed_total", map[string]string{"listener": "echo", "reason": "upstream_failed"}, 1)
	expect(t, fams, "netd_connections_refused_total", map[string]string{"listener": "echo", "reason": "denied"}, 6)
	expect(t, fams, "netd_bytes_received_total", echo, 110)
	expect(t, fams, "netd_datagrams_received_total", udp, 8)
	expect(t, fams, "netd_connections_active", map[string]string{"listener": "raw"}, 1)
	expect(t, fams, "netd_reloads_total", map[string]string{"result": "ok"}, 1)
	expect(t, fams, "netd_reloads_total", map[string]string{"result": "failed"}, 2)
	expect(t, fams, "netd_config_info", map[string]string{"hash": "hash2"}, 1)
	if _, ok := value(fams, "netd_config_info", map[string]string{"hash": "hash1"}); ok {
		t.Error("netd_config_info still reports the old hash")
	}
	expect(t, fams, "netd_config_last_reload_timestamp_seconds", nil, 1700000100)
	expect(t, fams, "netd_config_last_reload_successful", nil, 0)
	if n := len(fams["netd_connections_accepted_total"].GetMetric()); n != 3 {
		t.Errorf("netd_connections_accepted_total has %d series, want 3 (echo, udp, raw)", n)
	}
}

func TestFromStats(t *testing.T) {
	got := FromStats("echo", loop.Stats{Accepted: 1, Active: 2, BytesIn: 3, BytesOut: 4, ReadsPaused: 5, AcceptErrors: 6,
		DatagramsIn: 7, DatagramsOut: 8, Dropped: 9, Closed: map[api.Reason]uint64{"line_too_long": 10},
		Refused: map[api.Reason]uint64{"rate": 11}})
	want := ListenerSnapshot{Name: "echo", Accepted: 1, Active: 2, BytesIn: 3, BytesOut: 4, ReadsPaused: 5, AcceptErrors: 6,
		DatagramsIn: 7, DatagramsOut: 8, Dropped: 9, Closed: map[string]uint64{"line_too_long": 10},
		Refused: map[string]uint64{"rate": 11}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FromStats = %+v, want %+v", got, want)
	}
	sum := got.Add(got)
	if sum.Accepted != 2 || sum.Closed["line_too_long"] != 20 || got.Closed["line_too_long"] != 10 || sum.Refused["rate"] != 22 {
		t.Errorf("Add = %+v (and left %+v)", sum, got)
	}
}

func TestHealthAndReady(t *testing.T) {
	src := &fakeSource{}
	s := start(t, Config{Source: src})
	if code, body := do(t, s, "GET", "/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := do(t, s, "GET", "/readyz", nil); code != 503 || body != "not ready: listeners not started\n" {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	src.set(func(f *fakeSource) { f.ready = true })
	if code, body := do(t, s, "GET", "/readyz", nil); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	src.set(func(f *fakeSource) { f.draining = true })
	if code, body := do(t, s, "GET", "/readyz", nil); code != 503 || body != "not ready: draining\n" {
		t.Errorf("/readyz while draining = %d %q", code, body)
	}
	if code, body := do(t, s, "GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz while draining = %d %q", code, body)
	}
	if code, _ := do(t, s, "POST", "/healthz", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", code)
	}
	if code, _ := do(t, s, "GET", "/nope", nil); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}

func TestPprof(t *testing.T) {
	off := start(t, Config{Source: &fakeSource{}})
	on := start(t, Config{Source: &fakeSource{}, Pprof: true})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		if code, _ := do(t, off, "GET", path, nil); code != 404 {
			t.Errorf("pprof off: %s = %d, want 404", path, code)
		}
		if code, body := do(t, on, "GET", path, nil); code != 200 || body == "" {
			t.Errorf("pprof on: %s = %d", path, code)
		}
	}
	// Never on the default mux's behalf: the server serves its own mux.
	if http.DefaultServeMux == off.srv.Handler || http.DefaultServeMux == on.srv.Handler {
		t.Error("server uses http.DefaultServeMux")
	}
}

func TestReload(t *testing.T) {
	var (
		mu    sync.Mutex
		calls int
		err   error
		block chan struct{}
	)
	entered := make(chan struct{}, 1)
	reload := func() error {
		mu.Lock()
		calls++
		e, b := err, block
		mu.Unlock()
		if b != nil {
			entered <- struct{}{}
			select {
			case <-b:
			case <-time.After(10 * time.Second):
				return errors.New("test: never released")
			}
		}
		return e
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	s := start(t, Config{Source: &fakeSource{}, Reload: reload})

	if code, body := do(t, s, "POST", "/-/reload", nil); code != 200 || body != "reloaded\n" {
		t.Errorf("reload = %d %q", code, body)
	}
	if n := count(); n != 1 {
		t.Errorf("callback called %d times, want 1", n)
	}
	mu.Lock()
	err = errors.New(`netd.yaml:3:5: unknown key "adress"`)
	mu.Unlock()
	if code, body := do(t, s, "POST", "/-/reload", nil); code != 500 || body != "netd.yaml:3:5: unknown key \"adress\"\n" {
		t.Errorf("failed reload = %d %q", code, body)
	}
	mu.Lock()
	err = fmt.Errorf("shutting down: %w", ErrReloadConflict)
	mu.Unlock()
	if code, body := do(t, s, "POST", "/-/reload", nil); code != 409 || !strings.Contains(body, "shutting down") {
		t.Errorf("conflicting reload = %d %q", code, body)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		code, _ := do(t, s, m, "/-/reload", nil)
		if code != http.StatusMethodNotAllowed {
			t.Errorf("%s /-/reload = %d, want 405", m, code)
		}
	}
	if code, _ := do(t, s, "POST", "/-/reload", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}); code != http.StatusForbidden {
		t.Errorf("cross-site POST /-/reload = %d, want 403", code)
	}
	if n := count(); n != 3 {
		t.Errorf("callback called %d times, want 3 (not for 405 or 403)", n)
	}

	// A second reload while one runs is refused, not queued.
	mu.Lock()
	err, block = nil, make(chan struct{})
	release := block
	mu.Unlock()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+"/-/reload", nil)
		resp, err := client.Do(req)
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first reload never reached the callback")
	}
	if code, body := do(t, s, "POST", "/-/reload", nil); code != 409 {
		t.Errorf("concurrent reload = %d %q, want 409", code, body)
	}
	close(release)
	select {
	case code := <-first:
		if code != 200 {
			t.Errorf("first reload = %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first reload never answered")
	}
}

func TestReloadUnavailable(t *testing.T) {
	s, err := New(Config{Address: "127.0.0.1:0", Source: &fakeSource{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "http://localhost/-/reload", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "admin.reload: true") {
		t.Errorf("reload without callback = %d %q, want 403 saying how to enable it", rec.Code, rec.Body.String())
	}
}

func TestAddress(t *testing.T) {
	var buf testutil.SyncBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace})
	s, err := New(Config{Address: "127.0.0.1:0", Source: &fakeSource{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a := s.Addr().(*net.TCPAddr)
	if a.Port == 0 || !a.IP.IsLoopback() {
		t.Errorf("Addr() = %v", a)
	}
	if strings.Contains(buf.String(), "[WARN]") {
		t.Errorf("warning for a loopback address:\n%s", buf.String())
	}

	// A taken port is an error at New, naming the address.
	_, err = New(Config{Address: a.String(), Source: &fakeSource{}})
	if err == nil || !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("New on a taken address: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown without Serve: %v", err)
	}
	// The socket is closed though Serve never ran, and Serve after
	// Shutdown returns at once.
	if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
		c.Close()
		t.Error("socket still accepts after Shutdown")
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve after Shutdown did not return")
	}

	for _, bad := range []Config{{Source: &fakeSource{}}, {Address: "127.0.0.1:0"}, {Address: "127.0.0.1:x", Source: &fakeSource{}}} {
		if s, err := New(bad); err == nil {
			s.Shutdown(context.Background())
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

// fakeAddrListener is a loopback listener that claims to be bound to all
// interfaces, so that the warning is tested without exposing a port.
type fakeAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeAddrListener) Addr() net.Addr { return l.addr }

func TestNonLoopbackWarning(t *testing.T) {
	defer func(orig func(string, string) (net.Listener, error)) { listen = orig }(listen)
	var asked string
	listen = func(network, address string) (net.Listener, error) {
		asked = address
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return fakeAddrListener{ln, &net.TCPAddr{IP: net.IPv4zero, Port: ln.Addr().(*net.TCPAddr).Port}}, nil
	}
	var buf testutil.SyncBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	s, err := New(Config{Address: ":9900", Source: &fakeSource{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if asked != ":9900" {
		t.Errorf("listened on %q", asked)
	}
	out := buf.String()
	if !strings.Contains(out, "[WARN]") || !strings.Contains(out, "not on a loopback address") || !strings.Contains(out, "address=:9900") {
		t.Errorf("no warning for a non-loopback address; log:\n%s", out)
	}
}
