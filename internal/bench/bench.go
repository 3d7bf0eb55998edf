// Package bench is netd's load and soak tool for any line-echo service
// (`netd bench`).
//
// Each connection runs in its own goroutine and repeats one exchange: it
// writes a batch of InFlight lines (one line: ping-pong), then reads until
// every byte of the batch has come back, comparing each echoed byte, in
// order, with the byte that was sent. Line contents come from a PRNG seeded
// per connection, so a run is reproducible from its seed. The latency of a
// line is the time from the write of its batch to the read of its last byte;
// it goes into a per-connection log-linear histogram, merged at the end.
// Buffers are allocated once per connection: the steady state allocates
// nothing per line.
//
// Errors (connect, read, write, time-outs) and mismatches are counted, never
// fatal: the connection is closed and replaced, and the run goes on. Every
// read and write has a deadline, so a server that stops answering cannot hold
// the run past Duration plus a short grace period; cancelling the context
// ends the run at once, and Run still returns the report.
package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults applied by Run to zero-valued Options fields.
const (
	DefaultConns      = 64
	DefaultLineSize   = 64
	DefaultInFlight   = 1
	DefaultDuration   = 10 * time.Second
	DefaultTimeout    = 5 * time.Second
	DefaultCycleLines = 1000

	// maxGrace bounds how long in-flight exchanges may run on past Duration.
	maxGrace = 2 * time.Second
	// Batches larger than this are written by a second goroutine while the
	// first reads, so that a server which applies backpressure cannot
	// deadlock the exchange; smaller ones fit in the socket buffers.
	inlineWriteMax = 64 << 10
	maxLineSize    = 64 << 20
	maxInFlight    = 1 << 16
)

// ErrMismatch is returned (wrapped) by Run when an echoed byte differed from
// the byte sent, bytes came back that were never sent, or bytes were lost
// after a half-close.
var ErrMismatch = errors.New("echoed bytes differ from the bytes sent")

// ErrNothingEchoed is returned (wrapped) by Run when no byte at all came back.
var ErrNothingEchoed = errors.New("nothing was echoed")

// ErrNotListening is returned (wrapped) by Run when nothing accepted a
// connection at the address within Timeout, before the run started.
var ErrNotListening = errors.New("nothing accepts connections there")

// ErrOptions is matched (errors.Is) by the errors Run returns for bad
// options, before anything runs.
var ErrOptions = errors.New("bad bench options")

type optionsError struct{ msg string }

func (e optionsError) Error() string        { return e.msg }
func (e optionsError) Is(target error) bool { return target == ErrOptions }

func optErrorf(format string, args ...any) error {
	return optionsError{"bench: " + fmt.Sprintf(format, args...)}
}

// Options configure a run. Zero values take the defaults above.
type Options struct {
	// Address of the service: tcp://host:port (also tcp4://, tcp6://),
	// host:port, unix:///path, or a path starting with '/'.
	Address string `json:"address"`
	// Conns is the number of concurrent connections (default 64).
	Conns int `json:"conns"`
	// LineSize is the bytes per line including '\n' (default 64); with
	// RandomLines, the maximum.
	LineSize int `json:"line_size"`
	// InFlight is the lines in flight per connection: 1 is ping-pong
	// (default), more is pipelined.
	InFlight int `json:"in_flight"`
	// Duration of the run (default 10s).
	Duration time.Duration `json:"duration_ns"`
	// Lines, when > 0, stops each connection after this many lines (the run
	// still ends after Duration).
	Lines int `json:"lines,omitempty"`
	// Fragment writes each batch in random fragments: random split points,
	// tiny writes.
	Fragment bool `json:"fragment,omitempty"`
	// RandomLines makes line lengths random in 1..LineSize and their bytes
	// random: any byte except '\n', NUL, '\r' and invalid UTF-8 included.
	// Otherwise lines are LineSize long and printable ASCII.
	RandomLines bool `json:"random_lines,omitempty"`
	// HalfClose is the probability that a connection cycle ends with a
	// half-close: a last batch that ends in an unterminated tail, then
	// CloseWrite, and a check that everything, the tail too, comes back and
	// then EOF. Other cycles end with a plain close.
	HalfClose float64 `json:"half_close,omitempty"`
	// Reconnect (soak) ends each connection after a random number of lines
	// (1..CycleLines) and replaces it with a new one. Without it a
	// connection lives for the whole run.
	Reconnect bool `json:"reconnect,omitempty"`
	// CycleLines is the most lines a connection sends before it is replaced,
	// with Reconnect (default 1000).
	CycleLines int `json:"cycle_lines,omitempty"`
	// Timeout is the longest wait for a connect or for progress on a read or
	// write (default 5s). Past it the connection counts an error and is
	// replaced. Before the run starts, Run also waits up to Timeout for the
	// service to accept a first connection.
	Timeout time.Duration `json:"timeout_ns"`
	// ServerPID, when > 0, is the server process to watch: CPU time from
	// /proc/PID/stat (utime+stime) over the run, RSS from /proc/PID/status.
	ServerPID int `json:"server_pid,omitempty"`
	// Progress, when non-nil, receives one progress line per second.
	Progress io.Writer `json:"-"`
	// Log, when non-nil, receives one line per connection slot describing its
	// first mismatch (offset, expected and received bytes).
	Log io.Writer `json:"-"`
	// Seed of the line contents; 0 picks one from the clock. The report
	// carries the seed used.
	Seed int64 `json:"seed"`
	// TLS speaks TLS to the service: every connection starts with a full
	// handshake (no session cache), which counts in the line's latency and
	// in the run's time. TLSCA is a PEM file of the CAs to trust (empty:
	// the system's); TLSInsecure skips verifying the server's certificate.
	TLS         bool   `json:"tls,omitempty"`
	TLSCA       string `json:"tls_ca,omitempty"`
	TLSInsecure bool   `json:"tls_insecure,omitempty"`

	tlsConfig *tls.Config // made from the TLS fields by withDefaults
}

// Report is the outcome of a run. Durations are in nanoseconds in JSON.
type Report struct {
	Options Options `json:"options"`

	Lines         int64 `json:"lines"`          // complete lines echoed and verified
	BytesSent     int64 `json:"bytes_sent"`     // bytes written
	BytesVerified int64 `json:"bytes_verified"` // bytes echoed and found equal to those sent
	Mismatches    int64 `json:"mismatches"`     // exchanges whose echo differed, ran over, or was cut short after a half-close
	Errors        int64 `json:"errors"`         // read, write and time-out errors on open connections
	ConnectErrors int64 `json:"connect_errors"`
	Connects      int64 `json:"connects"`    // connections opened
	HalfCloses    int64 `json:"half_closes"` // half-closes verified: everything back, then EOF

	Elapsed     time.Duration `json:"elapsed_ns"`
	Interrupted bool          `json:"interrupted,omitempty"` // the context was cancelled before the end
	LinesPerSec float64       `json:"lines_per_sec"`
	MiBPerSec   float64       `json:"mib_per_sec"` // verified echo bytes per second, one direction

	Min  time.Duration `json:"min_ns"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`

	ClientCPU        time.Duration `json:"client_cpu_ns"` // this process's user+system CPU time during the run
	ClientCPUPerLine time.Duration `json:"client_cpu_per_line_ns"`

	ServerCPU        time.Duration `json:"server_cpu_ns,omitempty"` // the server's utime+stime during the run
	ServerCPUPerLine time.Duration `json:"server_cpu_per_line_ns,omitempty"`
	ServerPeakRSS    int64         `json:"server_peak_rss,omitempty"`     // bytes: VmHWM at the end (the process's peak since it started)
	ServerMaxRSS     int64         `json:"server_max_rss,omitempty"`      // bytes: largest VmRSS sampled during the run
	ServerRSSStart   int64         `json:"server_rss_start,omitempty"`    // bytes: VmRSS before the run
	ServerRSSEnd     int64         `json:"server_rss_end,omitempty"`      // bytes: VmRSS after the run
	ServerGone       bool          `json:"server_gone,omitempty"`         // the server process could not be sampled at the end
	FirstError       string        `json:"first_error,omitempty"`         // first error on an open connection
	FirstConnectErr  string        `json:"first_connect_error,omitempty"` // first connect error
	FirstMismatch    string        `json:"first_mismatch,omitempty"`      // description of the first mismatch
}

// withDefaults fills zero fields with the defaults and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Address == "" {
		return o, optErrorf("no address")
	}
	if _, _, err := parseAddress(o.Address); err != nil {
		return o, err
	}
	set := func(p *int, def int, name string, hi int) error {
		switch {
		case *p == 0:
			*p = def
		case *p < 0:
			return optErrorf("%s must not be negative, got %d", name, *p)
		case *p > hi:
			return optErrorf("%s must be at most %d, got %d", name, hi, *p)
		}
		return nil
	}
	if err := set(&o.Conns, DefaultConns, "connections", 1<<20); err != nil {
		return o, err
	}
	if err := set(&o.LineSize, DefaultLineSize, "line size", maxLineSize); err != nil {
		return o, err
	}
	if err := set(&o.InFlight, DefaultInFlight, "lines in flight", maxInFlight); err != nil {
		return o, err
	}
	if err := set(&o.CycleLines, DefaultCycleLines, "lines per cycle", math.MaxInt); err != nil {
		return o, err
	}
	if o.Lines < 0 {
		return o, optErrorf("lines must not be negative, got %d", o.Lines)
	}
	switch {
	case o.Duration == 0:
		o.Duration = DefaultDuration
	case o.Duration < 0:
		return o, optErrorf("duration must not be negative, got %v", o.Duration)
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return o, optErrorf("timeout must not be negative, got %v", o.Timeout)
	}
	if !(o.HalfClose >= 0 && o.HalfClose <= 1) {
		return o, optErrorf("half-close probability must be within 0..1, got %v", o.HalfClose)
	}
	if o.ServerPID < 0 {
		return o, optErrorf("server pid must not be negative, got %d", o.ServerPID)
	}
	if err := o.makeTLSConfig(); err != nil {
		return o, err
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
		if o.Seed == 0 {
			o.Seed = 1
		}
	}
	return o, nil
}

// makeTLSConfig makes the client configuration of a TLS run.
func (o *Options) makeTLSConfig() error {
	if !o.TLS {
		if o.TLSCA != "" || o.TLSInsecure {
			return optErrorf("--tls-ca and --tls-insecure need --tls")
		}
		return nil
	}
	cfg := &tls.Config{InsecureSkipVerify: o.TLSInsecure}
	if o.TLSCA != "" {
		b, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return optErrorf("tls ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return optErrorf("tls ca %s: no PEM certificate in it", o.TLSCA)
		}
	}
	if _, addr, err := parseAddress(o.Address); err == nil {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	o.tlsConfig = cfg
	return nil
}

// parseAddress turns an Address into a network and an address for net.Dial.
func parseAddress(a string) (network, addr string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", optErrorf("bad address %q: %s", a, why)
	}
	scheme, rest, hasScheme := strings.Cut(a, "://")
	if !hasScheme {
		switch {
		case strings.HasPrefix(a, "/") || strings.HasPrefix(a, "./") || strings.HasPrefix(a, "@"):
			return "unix", a, nil
		case a != "" && strings.Trim(a, "0123456789") == "":
			scheme, rest = "tcp", "127.0.0.1:"+a
		default:
			scheme, rest = "tcp", a
		}
	}
	switch strings.ToLower(scheme) {
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return bad("want host:port")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return bad("port must be 1..65535")
		}
		if host == "" {
			rest = net.JoinHostPort("localhost", port)
		}
		return strings.ToLower(scheme), rest, nil
	case "unix":
		if rest == "" {
			return bad("no socket path")
		}
		return "unix", rest, nil
	default:
		return bad("scheme must be tcp, tcp4, tcp6 or unix")
	}
}

// runner is the state shared by the connections of one run.
type runner struct {
	o                     Options
	network, addr         string
	ctx                   context.Context // cancelled: stop at once
	start, endAt, hardEnd time.Time

	mu            sync.Mutex
	firstErr      string
	firstConnErr  string
	firstMismatch string
	logMu         sync.Mutex
}

func (r *runner) note(dst *string, msg string) {
	r.mu.Lock()
	if *dst == "" {
		*dst = msg
	}
	r.mu.Unlock()
}

// logf writes to Log and progress to Progress under one lock, since both are
// often the same writer.
func (r *runner) logf(format string, args ...any) { r.writef(r.o.Log, format, args...) }

func (r *runner) writef(w io.Writer, format string, args ...any) {
	if w == nil {
		return
	}
	r.logMu.Lock()
	fmt.Fprintf(w, format, args...)
	r.logMu.Unlock()
}

// Run runs the load against o.Address until o.Duration has passed (plus at
// most a short grace for the exchanges in flight), every connection has done
// o.Lines lines, or ctx is cancelled. The run starts once the service has
// accepted a connection, so that bench started together with its server
// does not begin with connect errors. Run returns the report in every case
// once the run has started; the error is non-nil (wrapping ErrMismatch or
// ErrNothingEchoed) when a mismatch was seen or nothing came back, and, with
// nothing run, for bad options or when the service never accepted
// (ErrNotListening).
func Run(ctx context.Context, o Options) (Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Report{Options: o}, err
	}
	network, addr, _ := parseAddress(o.Address)
	if err := waitForService(ctx, network, addr, o.Timeout); err != nil {
		return Report{Options: o}, fmt.Errorf("bench: %s: %w", o.Address, err)
	}

	var srv *serverWatch
	if o.ServerPID > 0 {
		if srv, err = watchServer(o.ServerPID); err != nil {
			return Report{Options: o}, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := selfCPU()
	start := time.Now()
	r := &runner{
		o: o, network: network, addr: addr, ctx: runCtx,
		start: start, endAt: start.Add(o.Duration),
	}
	r.hardEnd = r.endAt.Add(min(o.Timeout, maxGrace))

	workers := make([]*worker, o.Conns)
	for i := range workers {
		workers[i] = newWorker(r, i)
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}

	// Progress and server sampling, once a second.
	stopTicker := make(chan struct{})
	var tickerDone sync.WaitGroup
	if o.Progress != nil || srv != nil {
		tickerDone.Add(1)
		go func() {
			defer tickerDone.Done()
			ticker(r, workers, srv, stopTicker)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopTicker)
	tickerDone.Wait()
	cpu1 := selfCPU()

	rep := Report{Options: o, Elapsed: elapsed, Interrupted: ctx.Err() != nil}
	var h Histogram
	for _, w := range workers {
		t := w.st.totals()
		rep.Lines += t.lines
		rep.BytesSent += t.bytesSent
		rep.BytesVerified += t.bytesVerified
		rep.Mismatches += t.mismatches
		rep.Errors += t.errors
		rep.ConnectErrors += t.connectErrors
		rep.Connects += t.connects
		rep.HalfCloses += t.halfCloses
		h.Merge(&w.hist)
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.LinesPerSec = float64(rep.Lines) / s
		rep.MiBPerSec = float64(rep.BytesVerified) / s / (1 << 20)
	}
	rep.Min, rep.Mean, rep.Max = h.Min(), h.Mean(), h.Max()
	rep.P50, rep.P90 = h.Quantile(0.50), h.Quantile(0.90)
	rep.P99, rep.P999 = h.Quantile(0.99), h.Quantile(0.999)
	rep.ClientCPU = cpu1 - cpu0
	if rep.Lines > 0 {
		rep.ClientCPUPerLine = rep.ClientCPU / time.Duration(rep.Lines)
	}
	if srv != nil {
		srv.finish(&rep)
	}
	rep.FirstError, rep.FirstConnectErr, rep.FirstMismatch = r.firstErr, r.firstConnErr, r.firstMismatch

	switch {
	case rep.Mismatches > 0:
		return rep, fmt.Errorf("bench: %d mismatches: %w", rep.Mismatches, ErrMismatch)
	case rep.BytesVerified == 0:
		return rep, fmt.Errorf("bench: %w (%d errors, %d connect errors)", ErrNothingEchoed, rep.Errors, rep.ConnectErrors)
	}
	return rep, nil
}

// waitForService dials addr until a connect succeeds, for up to timeout or
// until ctx is cancelled, and closes the connection it made.
func waitForService(ctx context.Context, network, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 10 * time.Millisecond
	for {
		d := net.Dialer{Deadline: deadline}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c.Close()
		}
		if time.Until(deadline) < backoff && ctx.Err() == nil {
			return fmt.Errorf("%w within %v: %w", ErrNotListening, timeout, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: interrupted: %w", ErrNotListening, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// ticker prints progress and samples the server once a second until stop.
func ticker(r *runner, workers []*worker, srv *serverWatch, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev totals
	prevAt := r.start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if srv != nil {
				srv.sample()
			}
			if r.o.Progress == nil {
				continue
			}
			var cur totals
			var active int64
			for _, w := range workers {
				cur.add(w.st.totals())
				active += w.st.active.Load()
			}
			dt := now.Sub(prevAt).Seconds()
			line := fmt.Sprintf("%5.0fs %10.0f lines/s %8.2f MiB/s  conns %d  errors %d  connect errors %d  mismatches %d",
				now.Sub(r.start).Seconds(),
				float64(cur.lines-prev.lines)/dt,
				float64(cur.bytesVerified-prev.bytesVerified)/dt/(1<<20),
				active, cur.errors, cur.connectErrors, cur.mismatches)
			if srv != nil && srv.lastRSS > 0 {
				line += "  server rss " + fmtBytes(srv.lastRSS)
			}
			r.writef(r.o.Progress, "%s\n", line)
			prev, prevAt = cur, now
		}
	}
}

// counters are one connection slot's running totals, read by the progress
// ticker while the connection runs.
type counters struct {
	lines, bytesSent, bytesVerified, mismatches atomic.Int64
	errors, connectErrors, connects, halfCloses atomic.Int64
	active                                      atomic.Int64
}

type totals struct {
	lines, bytesSent, bytesVerified, mismatches int64
	errors, connectErrors, connects, halfCloses int64
}

func (c *counters) totals() totals {
	return totals{
		lines: c.lines.Load(), bytesSent: c.bytesSent.Load(),
		bytesVerified: c.bytesVerified.Load(), mismatches: c.mismatches.Load(),
		errors: c.errors.Load(), connectErrors: c.connectErrors.Load(),
		connects: c.connects.Load(), halfCloses: c.halfCloses.Load(),
	}
}

func (t *totals) add(o totals) {
	t.lines += o.lines
	t.bytesSent += o.bytesSent
	t.bytesVerified += o.bytesVerified
	t.mismatches += o.mismatches
	t.errors += o.errors
	t.connectErrors += o.connectErrors
	t.connects += o.connects
	t.halfCloses += o.halfCloses
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
