// Package exec is netd's exec module, registered as "exec": inetd's
// "server =". For each connection it starts a program whose stdin and
// stdout are one end of a socketpair; the loop serves the other end as a
// connection of its own and relays bytes between it and the client, with
// backpressure both ways and half-close carried. The child is reaped
// through a pidfd watched by the loop: no goroutine per connection.
package exec

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/internal/relay"
)

// killGrace is how long a child whose client has gone gets between
// SIGTERM and SIGKILL. Tests shorten it.
var killGrace = time.Second

// ErrOverInstances is the error a connection over the instances cap is
// closed with.
var ErrOverInstances = errors.New("netd: exec: instances limit reached")

// Options are the exec module's options.
type Options struct {
	Command    string            `option:"command"`
	Args       []string          `option:"args"`
	Env        map[string]string `option:"env"`
	EnvKeep    []string          `option:"env_keep"`
	Instances  int               `option:"instances"`
	User       string            `option:"user"`
	Group      string            `option:"group"`
	Rlimits    map[string]int64  `option:"rlimits"`
	NoNewPrivs bool              `option:"no_new_privs"`
	Stderr     string            `option:"stderr"`
}

// Exec is one exec instance, serving one listener.
type Exec struct {
	path       string
	argv       []string // as the child's exec gets it: the helper's, with the program's after "--"
	env        []string // env_keep, env and PATH; the inetd variables are added per connection
	cred       *syscall.Credential
	stderrMode string
	instances  int64
	unix       bool // serves a unix:// listener
	listener   string
	log        hclog.Logger

	stderrLogger  hclog.Logger // the listener's, named "stderr"
	stderrLimit   api.LogLimit
	stderrDropped atomic.Int64 // stderr lines not logged since the last one logged

	cgroupOnce sync.Once
	cgroupDir  string // where children get cgroups of their own; "" falls back to process groups
	noCgroups  bool   // tests: fall back even where cgroups work

	live     atomic.Int64 // children started and not yet reaped
	overLog  api.LogLimit // rate limit of the "instances" warning
	spawnLog api.LogLimit // rate limit of the "cannot start" error
	mu       sync.Mutex
	sessions map[*session]struct{} // children not yet reaped, for Stop
	dying    []string              // cgroups killed but not yet empty, removed later
	metrics  execMetrics
}

// Metric names, for the README and the tests.
const (
	MetricStarted       = "netd_exec_children_started_total"
	MetricRunning       = "netd_exec_children_running"
	MetricExited        = "netd_exec_children_exited_total"
	MetricStartFailures = "netd_exec_start_failures_total"
	MetricOverInstances = "netd_exec_over_instances_total"
	MetricStartSeconds  = "netd_exec_start_seconds"
	MetricStderrDropped = "netd_exec_stderr_lines_dropped_total"
)

// execMetrics are an instance's own collectors.
type execMetrics struct {
	started, startFailures, overInstances prometheus.Counter
	stderrDropped                         prometheus.Counter
	running                               prometheus.Gauge
	exited                                *prometheus.CounterVec
	startSeconds                          prometheus.Histogram
}

func (m *execMetrics) register(r prometheus.Registerer) error {
	var err error
	counter := func(name, help string) prometheus.Counter {
		c, rerr := api.RegisterMetric(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
		err = errors.Join(err, rerr)
		return c
	}
	m.started = counter(MetricStarted, "Children started, one per connection.")
	m.startFailures = counter(MetricStartFailures, "Connections closed because their child could not be started.")
	m.overInstances = counter(MetricOverInstances, "Connections closed at once because instances children were running.")
	m.stderrDropped = counter(MetricStderrDropped, "Lines of children's stderr not logged because of the log rate limit.")
	var rerr error
	m.running, rerr = api.RegisterMetric(r, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricRunning, Help: "Children started and not yet reaped.",
	}))
	err = errors.Join(err, rerr)
	m.exited, rerr = api.RegisterMetric(r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricExited, Help: "Children reaped, by result: success (exit 0), failure (another exit code) or signal (killed).",
	}, []string{"result"}))
	err = errors.Join(err, rerr)
	m.startSeconds, rerr = api.RegisterMetric(r, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricStartSeconds,
		Help:    "Time the loop spent starting a child (fork and exec).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 12), // 50 µs to 100 ms
	}))
	return errors.Join(err, rerr)
}

// reaped counts a child that was waited for.
func (m *execMetrics) reaped(st *os.ProcessState) {
	m.running.Dec()
	result := "failure"
	if st != nil {
		if st.Success() {
			result = "success"
		} else if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			result = "signal"
		}
	}
	m.exited.WithLabelValues(result).Inc()
}

var (
	_ api.Module        = (*Exec)(nil)
	_ api.StreamHandler = (*Exec)(nil)
	_ api.Stopper       = (*Exec)(nil)
	_ api.Starter       = (*Exec)(nil)
	_ api.StreamHandler = (*session)(nil)
)

func init() {
	api.Register(api.Info{
		Name:        "exec",
		Description: "runs a program per connection with its stdin and stdout joined to the connection (inetd's server =)",
		New:         func() api.Module { return new(Exec) },
	})
}

// Provision implements api.Module. The command must be an absolute path to
// an executable file now, not at the first connection.
func (e *Exec) Provision(s api.Setup) error {
	opts := Options{Stderr: StderrLog}
	if err := s.Options.Decode(&opts); err != nil {
		return err
	}
	switch {
	case opts.Command == "":
		return s.Options.Errorf("command", "exec needs a command: the absolute path of the program to run")
	case !strings.HasPrefix(opts.Command, "/"):
		return s.Options.Errorf("command", "command must be an absolute path, not %q", opts.Command)
	}
	fi, err := os.Stat(opts.Command)
	switch {
	case err != nil:
		return s.Options.Errorf("command", "%v", err)
	case !fi.Mode().IsRegular():
		return s.Options.Errorf("command", "%s is not a regular file", opts.Command)
	case unix.Access(opts.Command, unix.X_OK) != nil:
		return s.Options.Errorf("command", "%s is not executable", opts.Command)
	}
	if opts.Instances < 0 {
		return s.Options.Errorf("instances", "instances must be 0 (unlimited) or more, not %d", opts.Instances)
	}
	env, key, err := baseEnv(opts.Env, opts.EnvKeep, os.LookupEnv)
	if err != nil {
		return s.Options.Errorf(key, "%w", err)
	}
	cred, key, err := credential(opts.User, opts.Group)
	if err != nil {
		return s.Options.Errorf(key, "%w", err)
	}
	if err := checkStderr(opts.Stderr); err != nil {
		return s.Options.Errorf("stderr", "%w", err)
	}
	helper := helperSettings{noNewPrivs: opts.NoNewPrivs, clearAmbient: hasAmbientCaps(), rlimits: map[string]uint64{}}
	for k, v := range opts.Rlimits {
		if _, ok := rlimitResources[k]; !ok {
			return s.Options.Errorf("rlimits", "unknown limit %q: want %s", k, rlimitNames())
		}
		if v < 0 {
			return s.Options.Errorf("rlimits", "%s must be 0 or more, not %d", k, v)
		}
		helper.rlimits[k] = uint64(v)
	}
	if err := checkPidfd(); err != nil {
		return s.Options.Errorf("command", "exec needs pidfd_open (Linux 5.3 or later): %v", err)
	}
	e.path = opts.Command
	e.argv = append([]string{opts.Command}, opts.Args...)
	if helper.needed() {
		e.path = helperExe
		e.argv = append(append([]string{"netd"}, helper.args()...), append([]string{opts.Command}, e.argv...)...)
	}
	e.env = env
	e.cred = cred
	e.stderrMode = opts.Stderr
	e.instances = int64(opts.Instances)
	e.unix = s.Network == "unix"
	e.listener = s.Listener
	e.log = s.Logger
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	e.stderrLogger = e.log.Named("stderr")
	if cred == nil && os.Geteuid() == 0 {
		e.log.Warn("exec: no user option and netd runs as root: children run as root unless netd drops privileges (the top-level user); set user")
	}
	e.sessions = map[*session]struct{}{}
	return e.metrics.register(s.Metrics)
}

// Start implements api.Starter. It runs after netd dropped its privileges:
// it checks that netd can still start children as user, and finds out
// whether children get cgroups of their own.
func (e *Exec) Start() error {
	if e.cred != nil && os.Geteuid() != 0 {
		if uint32(os.Geteuid()) != e.cred.Uid || uint32(os.Getegid()) != e.cred.Gid {
			return fmt.Errorf("option user: netd runs as uid %d gid %d and cannot start children as uid %d gid %d (only root can)",
				os.Geteuid(), os.Getegid(), e.cred.Uid, e.cred.Gid)
		}
		e.cred = nil // netd is that user already, and may not set groups
	}
	inheritedCloseOnExec()
	e.cgroups()
	return nil
}

// cgroupWarnOnce makes the warning that cgroups are unusable one per
// process.
var cgroupWarnOnce sync.Once

// cgroups returns the directory under which children get cgroups of their
// own, "" when they cannot.
func (e *Exec) cgroups() string {
	e.cgroupOnce.Do(func() {
		if e.noCgroups {
			return
		}
		st := cgroups()
		e.cgroupDir = st.dir
		if st.dir == "" {
			cgroupWarnOnce.Do(func() {
				e.log.Warn("exec: children cannot get cgroups of their own; a child's processes are killed through its process group, which one that calls setsid leaves, and outlives its connection", "reason", st.why)
			})
		}
	})
	return e.cgroupDir
}

// checkPidfd makes sure the kernel has pidfd_open, on netd's own pid.
func checkPidfd() error {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// OnAccept implements api.StreamHandler: it starts the child, or closes
// the client at once when the instances cap is reached.
func (e *Exec) OnAccept(c api.Conn) {
	if n := e.live.Add(1); e.instances > 0 && n > e.instances {
		e.live.Add(-1)
		e.metrics.overInstances.Inc()
		if e.overLog.Allow(c.Loop().Now()) {
			e.log.Warn("instances limit reached; closing new connections", "instances", e.instances, "remote", relay.Remote(c))
		}
		c.CloseFor(api.ReasonOverLimit, ErrOverInstances)
		return
	}
	if s, err := e.start(c); err != nil {
		if s == nil {
			e.live.Add(-1) // else the session frees it when its child is reaped
		}
		e.metrics.startFailures.Inc()
		if e.spawnLog.Allow(c.Loop().Now()) {
			e.log.Error("cannot start the command; closing the connection", "command", e.path, "remote", relay.Remote(c), "error", err)
		}
		c.CloseFor(api.ReasonError, err)
	}
}

// start runs the child for client c and joins it to the loop. When it
// fails without a session, nothing is left behind: no descriptor, no
// child. When it fails with one, the child is being killed and the
// session's watch reaps it.
func (e *Exec) start(c api.Conn) (*session, error) {
	inheritedCloseOnExec()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := fds[0]
	theirs := os.NewFile(uintptr(fds[1]), "exec-stdio")
	attr := &syscall.SysProcAttr{
		// A process group of its own, so that a kill reaches what the
		// child started too, and a terminal's ^C reaches only netd,
		// which drains.
		Setpgid:    true,
		Credential: e.cred,
	}
	cmd := &osexec.Cmd{
		Path: e.path,
		Args: e.argv,
		Env:  e.environ(c),
		// *os.File for all three: os/exec passes them to the child as
		// they are and starts no copying goroutine. A nil Stderr is
		// /dev/null.
		Stdin:       theirs,
		Stdout:      theirs,
		SysProcAttr: attr,
	}
	// What start opened for the child only; closed once it has its copies.
	var errR, cgroupFD = -1, -1
	var errW *os.File
	cgroup := ""
	release := func() {
		_ = theirs.Close()
		if errW != nil {
			_ = errW.Close()
		}
		if cgroupFD >= 0 {
			_ = unix.Close(cgroupFD)
		}
	}
	fail := func(err error) (*session, error) {
		release()
		_ = unix.Close(ours)
		if errR >= 0 {
			_ = unix.Close(errR)
		}
		if cgroup != "" {
			_ = unix.Rmdir(cgroup)
		}
		return nil, err
	}
	switch e.stderrMode {
	case StderrConnection:
		cmd.Stderr = theirs
	case StderrLog:
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return fail(fmt.Errorf("stderr pipe: %w", err))
		}
		errR, errW = p[0], os.NewFile(uintptr(p[1]), "exec-stderr")
		if err := unix.SetNonblock(errR, true); err != nil {
			return fail(fmt.Errorf("stderr pipe: %w", err))
		}
		cmd.Stderr = errW
	}
	if dir := e.cgroups(); dir != "" {
		if cgroup, cgroupFD, err = newChildCgroup(dir); err != nil {
			return fail(err)
		}
		attr.UseCgroupFD, attr.CgroupFD = true, cgroupFD
	}
	t0 := time.Now()
	err = cmd.Start()
	took := time.Since(t0)
	if err != nil {
		return fail(err)
	}
	release() // the child has its copies
	e.metrics.startSeconds.Observe(took.Seconds())
	e.metrics.started.Inc()
	e.metrics.running.Inc()
	s := &session{e: e, client: c, cmd: cmd, pidfd: -1, cgroup: cgroup}
	if errR >= 0 {
		s.stderr = &stderrLog{fd: errR, line: make([]byte, 0, MaxStderrLine)}
	}
	// From here on the child runs: every error path kills and reaps it.
	abort := func(err error) (*session, error) {
		_ = unix.Close(ours)
		s.killAndWait()
		e.metrics.reaped(cmd.ProcessState)
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		return abort(fmt.Errorf("pidfd_open: %w", err))
	}
	s.pidfd = pidfd
	loop := c.Loop()
	if s.stopWatch, err = loop.Watch(pidfd, s.exited); err != nil {
		return abort(err)
	}
	if s.stderr != nil {
		if s.stderr.stop, err = loop.Watch(s.stderr.fd, s.stderrReadable); err != nil {
			s.stopWatch()
			return abort(err)
		}
	}
	e.track(s)
	c.SetContext(s)
	if _, err := loop.Attach(ours, s); err != nil {
		// The client's close kills the child (s.child is nil, so its
		// output cannot have ended), and the watch reaps it.
		_ = unix.Close(ours)
		return s, err
	}
	return s, nil
}

func (e *Exec) track(s *session) {
	e.mu.Lock()
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
}

func (e *Exec) untrack(s *session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
}

// OnReadable implements api.StreamHandler for the client side.
func (e *Exec) OnReadable(c api.Conn) {
	if s, ok := c.Context().(*session); ok {
		s.fromClient()
		return
	}
	c.Consume(len(c.Inbound())) // closing: over the cap, or no child
}

// OnWritable implements api.StreamHandler: the client took what was queued
// for it, so the child's output may be read again.
func (e *Exec) OnWritable(c api.Conn) {
	if s, ok := c.Context().(*session); ok {
		s.clientDrained()
	}
}

// OnClose implements api.StreamHandler for the client side.
func (e *Exec) OnClose(c api.Conn, reason api.Reason, err error) {
	if s, ok := c.Context().(*session); ok {
		s.clientClosed(reason)
	}
}

// Stop implements api.Stopper: children still running once the listener's
// last connection has closed (those whose client left cleanly after they
// closed their output, and those in their kill grace) are killed and
// reaped here, so that none outlives the listener, nor anything they
// started. Stop may run on a loop or after the loops have stopped; it
// waits only for children already sent SIGKILL, and for their cgroups to
// empty (a few milliseconds; at most dyingWait).
func (e *Exec) Stop() error {
	e.mu.Lock()
	left := make([]*session, 0, len(e.sessions))
	for s := range e.sessions {
		left = append(left, s)
	}
	e.mu.Unlock()
	for _, s := range left {
		if s.killAndWait() {
			e.untrack(s)
			e.live.Add(-1)
			e.metrics.reaped(s.cmd.ProcessState)
		}
	}
	for deadline := time.Now().Add(dyingWait); e.removeDying() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.mu.Lock()
			e.log.Warn("exec: cgroups of killed children are not empty yet; left behind", "cgroups", e.dying)
			e.dying = nil
			e.mu.Unlock()
			break
		}
	}
	return nil
}

// dyingWait bounds how long Stop waits for killed cgroups to empty.
const dyingWait = 2 * time.Second

// releaseCgroup kills what is left in a session's cgroup and removes it,
// or keeps it to be removed later if its processes are still dying. Any
// goroutine.
func (e *Exec) releaseCgroup(path string) {
	if path != "" && !removeCgroup(path) {
		e.mu.Lock()
		e.dying = append(e.dying, path)
		e.mu.Unlock()
	}
	e.removeDying()
}

// removeDying removes the cgroups that have emptied since they were
// killed and returns how many are left. Any goroutine.
func (e *Exec) removeDying() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	left := e.dying[:0]
	for _, path := range e.dying {
		if !removeCgroup(path) {
			left = append(left, path)
		}
	}
	e.dying = left
	return len(left)
}

// session is one connection and its child, on one loop. It is the child
// side's handler; the Exec, through the client's Context, is the client
// side's.
//
// A session ends when both its child has exited and its client's
// connection has closed. Only then is the child reaped: until then it is
// a zombie whose pid, and so its process group's id, no other process
// can take. What the child left running is killed at that moment: its
// cgroup, or its process group, which therefore cannot be a stranger's.
type session struct {
	e      *Exec
	client api.Conn
	child  api.Conn // the loop's end of the socketpair
	cmd    *osexec.Cmd

	// mu guards pidfd, reaped, stderr and cgroup, which Stop and the kill
	// timer use from other goroutines. pidfd is -1 once the child is
	// reaped.
	mu        sync.Mutex
	pidfd     int
	reaped    bool
	killTimer *time.Timer
	stopWatch func()
	stderr    *stderrLog // the child's stderr, when it is logged
	cgroup    string     // the child's own cgroup; "" without one

	exitedSeen bool // the child has exited (the watch fired)
	clientGone bool
	childGone  bool            // the child's connection closed
	toChild    relay.Direction // the client to the child's stdin
	toClient   relay.Direction // the child's stdout to the client
}

// OnAccept implements api.StreamHandler for the child's connection; it
// runs inside Attach.
func (s *session) OnAccept(c api.Conn) { s.child = c }

// OnReadable implements api.StreamHandler: the child wrote, or closed its
// stdout.
func (s *session) OnReadable(c api.Conn) {
	if s.clientGone {
		c.Consume(len(c.Inbound()))
		return
	}
	if s.toClient.Forward(c, s.client) {
		_ = s.client.CloseWrite()
		s.finishIfDone()
	}
}

// OnWritable implements api.StreamHandler: the child took its stdin.
func (s *session) OnWritable(api.Conn) {
	if !s.clientGone {
		s.toChild.Resume(s.client)
	}
}

// OnClose implements api.StreamHandler for the child's connection.
func (s *session) OnClose(_ api.Conn, reason api.Reason, _ error) {
	s.childGone = true
	if s.clientGone {
		return
	}
	if reason == api.ReasonError || reason == api.ReasonIdleTimeout {
		// No way left to talk to the child: the client is closed, with
		// what it was sent, and clientClosed ends the child.
		_ = s.client.Close()
		return
	}
	if s.toClient.End() {
		_ = s.client.CloseWrite()
	}
	s.finishIfDone()
}

// fromClient forwards what the client sent, and its half-close, to the
// child's stdin.
func (s *session) fromClient() {
	c := s.client
	if s.childGone || s.child == nil {
		c.Consume(len(c.Inbound()))
		return
	}
	if s.toChild.Forward(c, s.child) {
		_ = s.child.CloseWrite() // the child reads end-of-file
		s.finishIfDone()
	}
}

func (s *session) clientDrained() {
	if !s.childGone && s.child != nil {
		s.toClient.Resume(s.child)
	}
}

// finishIfDone closes the client once the child's output has ended and
// either the child has exited or the client has finished too. A child
// that closed its stdout but goes on running is left to finish, and is
// reaped when it exits.
func (s *session) finishIfDone() {
	if !s.toClient.Ended() || !(s.exitedSeen || s.toChild.Ended()) {
		return
	}
	if s.child != nil && !s.childGone {
		_ = s.child.Close()
	}
	_ = s.client.Close()
}

// exited runs on the loop when the pidfd turns readable: the child has
// exited. The session ends if the client has gone; otherwise the client
// is closed once the child's output is all read (at once if nothing else
// holds the child's stdout), and that ends it.
func (s *session) exited() {
	if s.exitedSeen {
		return
	}
	s.exitedSeen = true
	s.mu.Lock()
	if s.stopWatch != nil {
		s.stopWatch() // the pidfd stays readable until it is closed
		s.stopWatch = nil
	}
	s.mu.Unlock()
	if s.clientGone {
		s.end()
		return
	}
	s.finishIfDone()
}

// end ends the session, on the loop: it kills what the child left
// running, reaps the child, logs the rest of its stderr and frees the
// instance.
func (s *session) end() {
	s.mu.Lock()
	if s.reaped {
		s.mu.Unlock()
		return
	}
	if s.cgroup == "" {
		// The child is a zombie, so its group's id is still its own.
		_ = unix.Kill(-s.cmd.Process.Pid, unix.SIGKILL)
	}
	err := s.cmd.Wait()
	s.reaped = true
	if s.killTimer != nil {
		s.killTimer.Stop()
	}
	_ = unix.Close(s.pidfd)
	s.pidfd = -1
	cgroup := s.cgroup
	s.cgroup = ""
	s.mu.Unlock()
	s.e.releaseCgroup(cgroup)
	if s.stderr != nil {
		s.stderrReadable() // what it wrote before it went
		s.mu.Lock()
		s.closeStderrLocked(true)
		s.mu.Unlock()
	}
	s.e.untrack(s)
	s.e.live.Add(-1)
	s.e.metrics.reaped(s.cmd.ProcessState)
	if st := s.cmd.ProcessState; st != nil {
		s.e.log.Debug("child exited", "pid", st.Pid(), "status", st.String(), "remote", relay.Remote(s.client))
	} else {
		s.e.log.Warn("wait for child failed", "error", err)
	}
}

// clientClosed ends the child's part when the client's connection is gone.
func (s *session) clientClosed(reason api.Reason) {
	s.clientGone = true
	if s.child != nil && !s.childGone {
		s.child.Abort(api.ReasonDone, nil)
	}
	switch {
	case s.exitedSeen:
		s.end()
	case reason == api.ReasonError:
		// A reset: no grace.
		s.kill(unix.SIGKILL)
	case !s.toClient.Ended():
		// The child may still write, and nobody will read it. When the
		// daemon stops, Stop ends the grace early.
		s.kill(unix.SIGTERM)
		s.mu.Lock()
		if !s.reaped {
			s.killTimer = time.AfterFunc(killGrace, func() { s.kill(unix.SIGKILL) })
		}
		s.mu.Unlock()
	}
}

// kill signals the child's process group, and the child through its pidfd
// (which cannot hit a recycled pid), unless it has been reaped. Any
// goroutine.
func (s *session) kill(sig unix.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reaped {
		return
	}
	if s.pidfd >= 0 {
		_ = unix.PidfdSendSignal(s.pidfd, sig, nil, 0)
	}
	// The group keeps its id while its leader is unreaped, so this cannot
	// reach a stranger either.
	_ = unix.Kill(-s.cmd.Process.Pid, sig)
}

// killAndWait kills the child and what it started, and waits for it, off
// the loop's normal path: for error paths and Stop. It reports whether
// this call reaped it. Any goroutine.
func (s *session) killAndWait() bool {
	s.mu.Lock()
	if s.reaped {
		s.mu.Unlock()
		return false
	}
	if s.pidfd >= 0 {
		_ = unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0)
	}
	_ = unix.Kill(-s.cmd.Process.Pid, unix.SIGKILL)
	_ = s.cmd.Wait()
	s.reaped = true
	if s.killTimer != nil {
		s.killTimer.Stop()
	}
	if s.pidfd >= 0 {
		// The watch, if any, is not removed first (this may run off the
		// loop): epoll forgets a closed descriptor, or, while a fork
		// still holds it, the loop drops its events as stale (its
		// registration generation no longer matches).
		_ = unix.Close(s.pidfd)
		s.pidfd = -1
	}
	s.closeStderrLocked(false)
	cgroup := s.cgroup
	s.cgroup = ""
	s.mu.Unlock()
	s.e.releaseCgroup(cgroup)
	return true
}
