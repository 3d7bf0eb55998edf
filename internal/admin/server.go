// Package admin is netd's admin endpoint: Prometheus metrics, health and
// readiness probes, an optional pprof, and a reload trigger, served over
// HTTP from goroutines of its own, never from the event loops.
//
//	GET  /metrics        Prometheus exposition of the registry (see Metrics)
//	GET  /healthz        200 "ok" while the process runs
//	GET  /readyz         200 once Source.Ready() and not Source.Draining(); 503 and why otherwise
//	POST /-/reload       calls Config.Reload: 200 "reloaded", 409 or 500 and the error;
//	                     403 when Config.Reload is nil (reload not enabled)
//	GET  /debug/pprof/   net/http/pprof, only with Config.Pprof
//
// It listens on TCP or on a unix socket (unix.go). Over TCP a request must
// name this endpoint in its Host header (see allowedHost), and a POST that
// carries an Origin must come from such a host too: a web page in a
// browser on the host cannot reach it by DNS rebinding.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netd/netd/pkg/modules/api"
)

// ErrReloadConflict is what a Reload callback wraps when a reload cannot
// run now (another one is under way, or the daemon is shutting down);
// POST /-/reload then answers 409 Conflict rather than 500.
var ErrReloadConflict = errors.New("reload cannot run now")

// Config configures a Server.
type Config struct {
	// Network is "tcp" (or "", the same) or "unix".
	Network string
	// Address is, for tcp, host:port to listen on; port 0 picks a free
	// port. A host other than a loopback address is allowed but logged as
	// a warning. For unix it is the socket file's path.
	Address string
	// Mode, UID and GID are a unix socket file's permission bits and
	// owner (-1 keeps the process's own user or group). New sets them
	// before the socket appears at Address, so that nobody ever finds it
	// open wider. Mode must be set for unix.
	Mode     os.FileMode
	UID, GID int
	// File, when set, is a listening socket already bound to Address
	// (handed over by an upgrade) to serve instead of binding; New dups it
	// and the caller closes it.
	File *os.File
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Logger receives the server's logs; nil means none.
	Logger hclog.Logger
	// Reload runs a reload for POST /-/reload and returns once it is done.
	// nil makes the endpoint answer 403: reloading is opt-in.
	Reload func() error
	// Source is read by /readyz and, unless Metrics is set, by /metrics.
	Source Source
	// Version and Commit label netd_build_info, unless Metrics is set.
	Version, Commit string
	// Metrics, when set, is the registry to serve, so that one registry
	// (counters, module collectors, reload state) outlives a Server that
	// is replaced. nil means New builds one from Source, Version and Commit.
	Metrics *Metrics
}

// Server is a bound admin endpoint.
type Server struct {
	cfg      Config
	log      hclog.Logger
	metrics  *Metrics
	src      Source
	ln       net.Listener
	sock     *socketFile // the unix socket file; nil for tcp
	hosts    hostCheck
	srv      *http.Server
	handler  http.Handler
	reloadMu sync.Mutex
	// refusedLog limits the warning about refused requests, which any
	// client can trigger, to one a second.
	refusedLog api.LogLimit
}

// New binds cfg.Address at once (unless cfg.File is bound already),
// so that an address in use is a start-up error, and builds the handlers. Nothing is served until Serve.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	src := cfg.Source
	if src == nil && cfg.Metrics != nil {
		src = cfg.Metrics.src
	}
	if src == nil {
		return nil, errors.New("admin: no Source")
	}
	if cfg.Address == "" {
		return nil, errors.New("admin: no address")
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(src, cfg.Version, cfg.Commit)
	}
	s := &Server{cfg: cfg, log: log, metrics: m, src: src}
	var err error
	switch cfg.Network {
	case "unix":
		s.ln, s.sock, err = listenUnix(cfg)
	case "", "tcp":
		s.ln, err = listenTCP(cfg)
		if err == nil {
			s.hosts = newHostCheck(cfg.Address)
		}
	default:
		err = fmt.Errorf("network %q: want tcp or unix", cfg.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	ln := s.ln
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		log.Warn("admin endpoint is not on a loopback address: anyone who can reach it can read metrics and trigger reloads",
			"address", cfg.Address, "bound", ln.Addr().String())
	}
	s.handler = s.guard(s.routes())
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
		// No WriteTimeout: /debug/pprof/profile and /trace stream for as
		// long as their seconds parameter says.
	}
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.metrics.reg,
		promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
			ErrorLog:      s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
			ErrorHandling: promhttp.ContinueOnError, // one failing module collector does not blank the scrape
			Registry:      s.metrics.reg,
		})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	// Browsers may not trigger a reload from another site's page: the
	// cross-origin check refuses a POST whose Origin or Sec-Fetch-Site says
	// it came from elsewhere; curl and `netd reload` send neither.
	mux.Handle("POST /-/reload", http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.reload)))
	if s.cfg.Pprof {
		// On this mux only: importing net/http/pprof also registers on
		// http.DefaultServeMux, which netd never serves.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		body := "netd admin endpoint\n/metrics\n/healthz\n/readyz\nPOST /-/reload\n"
		if s.cfg.Pprof {
			body += "/debug/pprof/\n"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.src.Draining():
		text(w, http.StatusServiceUnavailable, "not ready: draining")
	case !s.src.Ready():
		text(w, http.StatusServiceUnavailable, "not ready: listeners not started")
	default:
		text(w, http.StatusOK, "ready")
	}
}

func (s *Server) reload(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Reload == nil {
		text(w, http.StatusForbidden, "reload through the admin endpoint is disabled: set admin.reload: true in the config, or send SIGHUP")
		return
	}
	if !s.reloadMu.TryLock() {
		text(w, http.StatusConflict, "a reload is already under way")
		return
	}
	defer s.reloadMu.Unlock()
	s.log.Info("reload requested", "via", "POST /-/reload")
	switch err := s.cfg.Reload(); {
	case err == nil:
		text(w, http.StatusOK, "reloaded")
	case errors.Is(err, ErrReloadConflict):
		text(w, http.StatusConflict, err.Error())
	default:
		text(w, http.StatusInternalServerError, err.Error())
	}
}

// text writes a one-line plain-text answer.
func text(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, line)
}

// Addr is the address the server is bound to, with the real port where
// Config.Address asked for port 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is where the server answers, for logs: http://host:port, or
// unix:///path.
func (s *Server) URL() string {
	if s.sock != nil {
		return "unix://" + s.sock.path
	}
	return "http://" + s.ln.Addr().String()
}

// File returns a dup of the listening socket, close-on-exec, for handing
// it to another process (an upgrade). The caller closes it.
func (s *Server) File() (*os.File, error) {
	fl, ok := s.ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("admin: %T has no file to hand over", s.ln)
	}
	f, err := fl.File() // dup'ed with F_DUPFD_CLOEXEC by package net
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return f, nil
}

// Disown makes Shutdown leave the unix socket file in place: another
// process (an upgrade) serves it now.
func (s *Server) Disown() {
	if s.sock != nil {
		s.sock.disowned.Store(true)
	}
}

// Handler is the server's handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics is the registry the server serves.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Serve serves until Shutdown; it returns nil after Shutdown and the
// error otherwise. Run it on a goroutine of its own.
func (s *Server) Serve() error {
	s.log.Info("admin endpoint serving", "address", s.URL(), "reload", s.cfg.Reload != nil, "pprof", s.cfg.Pprof)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// Shutdown stops accepting, closes idle connections and waits for active
// requests until ctx ends (then closes them). The socket is closed even if
// Serve never ran.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	if s.sock != nil {
		s.sock.remove()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		_ = s.srv.Close()
	}
	return err
}

// listen is net.Listen; tests replace it.
var listen = net.Listen

func listenTCP(cfg Config) (net.Listener, error) {
	if cfg.File != nil {
		return net.FileListener(cfg.File)
	}
	return listen("tcp", cfg.Address)
}
