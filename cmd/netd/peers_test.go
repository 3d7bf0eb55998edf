package main_test

// End-to-end tests against real peer programs from Debian packages:
// redis-server, driven by redis-benchmark and by hand, behind netd's proxy;
// and xinetd's built-in services beside netd's inetd modules, byte for byte.
// Each test skips, saying why, when its programs are not installed or cannot
// run here; under CI=true, where .ci/run installs them, it fails instead.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

// --- Helpers. ---

// skipPeer skips the test for a reason outside netd: a peer program missing
// or unable to run here. Under CI=true it fails the test instead, since
// .ci/run installs every peer and a skipped peer test would pass unrun.
func skipPeer(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, so a peer test may not skip: "+format, args...)
	}
	t.Skipf(format, args...)
}

// lookProgram returns the path of program name, or skips the test naming
// the Debian package that holds it (skipPeer).
func lookProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Daemons live in sbin, which a non-root PATH often lacks.
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	skipPeer(t, "%s is not installed (Debian package %s; .ci/run installs it)", name, pkg)
	return ""
}

// peerProcess is a peer program the test started, with its output.
type peerProcess struct {
	name string
	cmd  *exec.Cmd
	out  testutil.SyncBuffer
	done chan struct{}
}

// startPeer starts a program and, at cleanup, ends it by its PID:
// SIGTERM, then SIGKILL if it is still there after 10 s.
func startPeer(t *testing.T, env []string, path string, args ...string) *peerProcess {
	t.Helper()
	p := &peerProcess{name: filepath.Base(path), done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *peerProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *peerProcess) stop() { testutil.Terminate(p.cmd.Process, p.done, 10*time.Second) }

// --- redis behind the proxy. ---

// resp encodes a command as RESP, the array of bulk strings redis reads.
func resp(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// redisExchange sends req and checks that exactly want comes back. Reading
// exactly len(want) bytes leaves any stray byte to spoil the next reply,
// so a sequence of exchanges checks the stream as a whole.
func redisExchange(t *testing.T, c net.Conn, req, want string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("sending %.60q: %v", req, err)
	}
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("after %.60q: read %.60q, %v; want %.60q", req, got[:n], err, want)
	}
	if string(got) != want {
		t.Fatalf("after %.60q: got %.60q, want %.60q", req, got, want)
	}
}

// waitRedis waits, bounded, until redis answers PING at address.
func waitRedis(t *testing.T, redis *peerProcess, network, address string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout(network, address, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = io.WriteString(c, resp("PING"))
			got := make([]byte, len("+PONG\r\n"))
			if err == nil {
				_, err = io.ReadFull(c, got)
			}
			c.Close()
			if err == nil && string(got) == "+PONG\r\n" {
				return
			}
		}
		if redis.exited() {
			t.Fatalf("redis-server exited:\n%s", redis.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server does not answer PING at %s %s (%v):\n%s", network, address, err, redis.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// benchRate is redis-benchmark -q's summary of one test, after the
// progress lines ("SET: rps=...") it overwrites with \r.
var benchRate = regexp.MustCompile(`\b(SET|GET): ([0-9.]+) requests per second`)

// redisBenchmark runs redis-benchmark against 127.0.0.1:port and returns
// the SET and GET requests per second it reports. It fails the test if
// redis-benchmark fails, times out, or reports any error.
func redisBenchmark(t *testing.T, bin string, port, pipeline int) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-n", "20000", "-c", "20", "-t", "set,get", "-q"}
	if pipeline > 1 {
		args = append(args, "-P", strconv.Itoa(pipeline))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	text := string(out)
	// The summaries without the progress lines, for the messages.
	var summary []string
	for _, s := range strings.FieldsFunc(text, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if s = strings.TrimSpace(s); s != "" && !strings.Contains(s, "rps=") {
			summary = append(summary, s)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("redis-benchmark %v did not finish within 120 s: %v", args, summary)
	}
	if err != nil {
		t.Fatalf("redis-benchmark %v: %v: %q", args, err, summary)
	}
	for _, bad := range []string{"ERR", "error", "Error"} {
		if strings.Contains(text, bad) {
			t.Errorf("redis-benchmark %v reported %q: %q", args, bad, summary)
		}
	}
	rates := map[string]float64{}
	for _, m := range benchRate.FindAllStringSubmatch(text, -1) {
		rates[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	for _, op := range []string{"SET", "GET"} {
		if rates[op] <= 0 {
			t.Errorf("redis-benchmark %v: no requests per second for %s in %q", args, op, summary)
		}
	}
	return rates
}

// TestProxyInFrontOfRedis: redis-server behind two proxy listeners, one
// whose upstream is redis's TCP port and one whose upstream is its unix
// socket. redis-benchmark, without and with pipelining, must complete
// through each with no error, and commands sent by hand must get exactly
// redis's replies, whichever listener carries them. The rates are logged
// for information, never asserted: they depend on the machine.
func TestProxyInFrontOfRedis(t *testing.T) {
	server := lookProgram(t, "redis-server", "redis-server")
	bench := lookProgram(t, "redis-benchmark", "redis-tools")

	dir := t.TempDir()
	port := testutil.FreePort(t)
	sock := filepath.Join(dir, "redis.sock")
	redis := startPeer(t, nil, server,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", dir)
	redisAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitRedis(t, redis, "tcp", redisAddr)
	waitRedis(t, redis, "unix", sock)

	cfg := fmt.Sprintf(`listeners:
  - name: redis-tcp
    address: tcp://127.0.0.1:0
    module: proxy
    options:
      upstreams: [tcp://%s]
  - name: redis-unix
    address: tcp://127.0.0.1:0
    module: proxy
    options:
      upstreams: [unix://%s]
`, redisAddr, sock)
	d := testutil.StartDaemon(t, nil, "-c", testutil.WriteConfig(t, "redis-proxy.yaml", cfg))
	listenerPort := func(name string) int {
		_, addr, _ := strings.Cut(d.Addrs[name], "://")
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("listener %s at %q: %v", name, d.Addrs[name], err)
		}
		n, _ := strconv.Atoi(p)
		return n
	}

	// Each path once without pipelining and once with 16 requests in flight
	// per connection; direct first, as the reference the log compares with.
	paths := []struct{ name, listener, label string }{
		{"direct", "", "direct"},
		{"tcp", "redis-tcp", "netd, tcp upstream"},
		{"unix", "redis-unix", "netd, unix upstream"},
	}
	var figures []string
	for _, pipeline := range []int{1, 16} {
		for _, p := range paths {
			t.Run(fmt.Sprintf("benchmark P%d %s", pipeline, p.name), func(t *testing.T) {
				target := port
				if p.listener != "" {
					target = listenerPort(p.listener)
				}
				r := redisBenchmark(t, bench, target, pipeline)
				figures = append(figures, fmt.Sprintf("-P %-2d %-20s SET %9.0f req/s  GET %9.0f req/s",
					pipeline, p.label, r["SET"], r["GET"]))
			})
		}
	}
	t.Logf("redis-benchmark -n 20000 -c 20 -t set,get (information only, not asserted; netd built with race=%v):\n%s",
		testutil.RaceEnabled, strings.Join(figures, "\n"))

	t.Run("commands", func(t *testing.T) {
		viaTCP, viaUnix := d.DialIn(t, "redis-tcp"), d.DialIn(t, "redis-unix")
		redisExchange(t, viaTCP, resp("PING"), "+PONG\r\n")
		redisExchange(t, viaTCP, resp("SET", "netd:k", "v"), "+OK\r\n")
		redisExchange(t, viaTCP, resp("GET", "netd:k"), "$1\r\nv\r\n")
		redisExchange(t, viaTCP, resp("GET", "netd:missing"), "$-1\r\n")
		// Both listeners reach the same redis: what one wrote, the other reads.
		redisExchange(t, viaUnix, resp("GET", "netd:k"), "$1\r\nv\r\n")
		binaryValue := "a\r\nb\x00c\xff$-1\r\n*2\r\n"
		redisExchange(t, viaUnix, resp("SET", "netd:bin", binaryValue), "+OK\r\n")
		redisExchange(t, viaTCP, resp("GET", "netd:bin"), fmt.Sprintf("$%d\r\n%s\r\n", len(binaryValue), binaryValue))
		// Pipelined: three commands in one write, three replies in order.
		redisExchange(t, viaTCP, resp("INCR", "netd:n")+resp("INCR", "netd:n")+resp("INCRBY", "netd:n", "40"), ":1\r\n:2\r\n:42\r\n")
		// A value of 1 MiB, more than the proxy holds before it stops
		// reading the other side, in both directions.
		big := strings.Repeat("0123456789abcdef", 1<<16)
		redisExchange(t, viaUnix, resp("SET", "netd:big", big), "+OK\r\n")
		redisExchange(t, viaTCP, resp("STRLEN", "netd:big"), ":1048576\r\n")
		redisExchange(t, viaTCP, resp("GET", "netd:big"), fmt.Sprintf("$%d\r\n%s\r\n", len(big), big))
		// QUIT: redis answers and closes; the proxy carries the close back.
		for _, c := range []net.Conn{viaTCP, viaUnix} {
			redisExchange(t, c, resp("QUIT"), "+OK\r\n")
			expectEOF(t, c, 5*time.Second)
		}
	})
}

// --- xinetd beside netd. ---

// peerServices are the services TestInetdServicesBesideXinetd runs in
// both daemons: name is netd's listener, service xinetd's built-in and
// netd's module.
var peerServices = []struct {
	name, service string
	udp           bool
	options       string // netd's module options
}{
	{"daytime-tcp", "daytime", false, ""},
	{"daytime-udp", "daytime", true, ""},
	{"time-tcp", "time", false, ""},
	{"time-udp", "time", true, ""},
	{"chargen-tcp", "chargen", false, ""},
	{"chargen-udp", "chargen", true, ""},
	// xinetd's echo is RFC 862's: bytes back as they arrive, no lines.
	{"echo-tcp", "echo", false, "{mode: raw}"},
	{"echo-udp", "echo", true, ""},
	{"discard-tcp", "discard", false, ""},
	{"discard-udp", "discard", true, ""},
}

var xinetdWorking = regexp.MustCompile(`Started working: (\d+) available services`)

// startXinetd runs xinetd in the foreground with peerServices as INTERNAL
// services on free ports, as the current user, in time zone tz, and
// returns each service's address by netd's listener name. It skips the
// test when xinetd cannot start or bind here: that says nothing of netd.
func startXinetd(t *testing.T, bin, tz string) map[string]string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		skipPeer(t, "no current user for xinetd's user attribute: %v", err)
	}
	dir := t.TempDir()
	addrs := map[string]string{}
	var conf strings.Builder
	for _, s := range peerServices {
		// xinetd answers datagrams itself (wait = yes), and serves each
		// stream in a process of its own (wait = no). The cps limit is
		// raised so that no burst of test connections turns a service off
		// for 10 s, as xinetd's default of 50 a second would.
		port, sockType, protocol, wait := testutil.FreePort(t), "stream", "tcp", "no"
		if s.udp {
			port, sockType, protocol, wait = testutil.FreeUDPPort(t), "dgram", "udp", "yes"
		}
		addrs[s.name] = fmt.Sprintf("%s://127.0.0.1:%d", protocol, port)
		fmt.Fprintf(&conf, `service %s
{
	id          = %s-%s
	type        = INTERNAL UNLISTED
	socket_type = %s
	protocol    = %s
	port        = %d
	wait        = %s
	user        = %s
	bind        = 127.0.0.1
	flags       = REUSE
	cps         = 1000 1
}
`, s.service, s.service, sockType, sockType, protocol, port, wait, u.Username)
	}
	cfg := testutil.WriteConfig(t, "xinetd.conf", conf.String())
	logPath := filepath.Join(dir, "xinetd.log")
	x := startPeer(t, []string{"TZ=" + tz}, bin, "-dontfork", "-f", cfg,
		"-pidfile", filepath.Join(dir, "xinetd.pid"), "-filelog", logPath)

	// xinetd logs "Started working: N available services" once it has set
	// up what it could; a service it could not bind is deactivated, after
	// "bind failed" and retries.
	readLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	var m []string
	for m = xinetdWorking.FindStringSubmatch(readLog()); m == nil; m = xinetdWorking.FindStringSubmatch(readLog()) {
		if x.exited() {
			skipPeer(t, "xinetd cannot start here as user %s: %v\n%s%s", u.Username, x.cmd.ProcessState, x.out.String(), readLog())
		}
		if time.Now().After(deadline) {
			skipPeer(t, "xinetd did not start its services within 20 s:\n%s%s", x.out.String(), readLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(peerServices) {
		log := readLog()
		if strings.Contains(log, "bind failed") || os.Getuid() != 0 {
			skipPeer(t, "xinetd set up %d of %d services as user %s (cannot bind or run them here):\n%s", n, len(peerServices), u.Username, log)
		}
		// As root with free ports, a service turned down is our config's fault.
		t.Fatalf("xinetd set up %d of %d services:\n%s", n, len(peerServices), log)
	}
	return addrs
}

// daytimeShape is the daytime line, as xinetd sends it: the zone is letters,
// or a numeric abbreviation such as -03 where the zone has no letters.
var daytimeShape = regexp.MustCompile(`^\d\d [A-Z]{3} \d{4} \d\d:\d\d:\d\d [A-Z0-9+-]+\r\n$`)

// chargenFirstLine is netd's first chargen line, as its README shows it.
const chargenFirstLine = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"

// checkChargenLines checks that p holds whole lines of 72 printable ASCII
// characters and CRLF, and, if tail > 0, that its last line holds tail
// characters instead.
func checkChargenLines(p []byte, tail int) error {
	for i := 0; len(p) > 0; i++ {
		n := 72
		if len(p) < 74 && tail > 0 {
			n = tail
		}
		if len(p) < n+2 {
			return fmt.Errorf("line %d is cut short: %q", i, p)
		}
		for j, ch := range p[:n] {
			if ch < 0x20 || ch > 0x7e {
				return fmt.Errorf("line %d, character %d is %q, not printable: %q", i, j, ch, p[:n+2])
			}
		}
		if string(p[n:n+2]) != "\r\n" {
			return fmt.Errorf("line %d is not %d characters and CRLF: %q", i, n, p[:min(len(p), n+2)])
		}
		p = p[n+2:]
	}
	return nil
}

// TestInetdServicesBesideXinetd: xinetd's built-in daytime, time, chargen,
// echo and discard, and netd's modules of the same names, each over TCP
// and UDP, side by side in the same time zone: what each sends must have
// the same shape, and agree where the READMEs say they agree. Where the
// chargen README documents an intended difference (the ring, where a
// stream starts, half-close), only the shape is compared.
func TestInetdServicesBesideXinetd(t *testing.T) {
	bin := lookProgram(t, "xinetd", "xinetd")

	// A zone with no letters, so that the abbreviation's shape is compared
	// too; UTC where the zone data is missing.
	tz := "America/Sao_Paulo"
	loc, err := time.LoadLocation(tz)
	if err != nil {
		tz, loc = "UTC", time.UTC
	}
	xaddrs := startXinetd(t, bin, tz)

	var cfg strings.Builder
	cfg.WriteString("listeners:\n")
	for _, s := range peerServices {
		network := "tcp"
		if s.udp {
			network = "udp"
		}
		fmt.Fprintf(&cfg, "  - name: %s\n    address: %s://127.0.0.1:0\n    module: %s\n", s.name, network, s.service)
		if s.options != "" {
			fmt.Fprintf(&cfg, "    options: %s\n", s.options)
		}
	}
	d := testutil.StartDaemon(t, []string{"TZ=" + tz}, "-c", testutil.WriteConfig(t, "inetd-peers.yaml", cfg.String()))

	// The two daemons, xinetd first: each test below asks both the same.
	// xinetd 2.3.15.3 now and then leaves a datagram unanswered, one in
	// flight at a time on loopback (its service log shows no START for
	// it; from none to a quarter of 150 in a row on a busy 2-CPU
	// machine), so a UDP question to xinetd gets up to 5 tries, as a UDP
	// client would make; one to netd gets one.
	type peer struct {
		who   string
		dial  func(t *testing.T, name string) net.Conn
		tries int
	}
	peers := []peer{
		{"xinetd", func(t *testing.T, name string) net.Conn {
			network, address, _ := strings.Cut(xaddrs[name], "://")
			return testutil.DialNet(t, network, address)
		}, 5},
		{"netd", func(t *testing.T, name string) net.Conn { return d.DialIn(t, name) }, 1},
	}
	// ask sends payload on a UDP connection and returns the answer.
	ask := func(t *testing.T, p peer, c net.Conn, payload string) []byte {
		t.Helper()
		for try := 1; ; try++ {
			got := udpExchange(t, c, payload, 2*time.Second)
			if got != nil || try == p.tries {
				return got
			}
			t.Logf("%s: no answer to %d bytes within 2 s (try %d); asking again", p.who, len(payload), try)
		}
	}
	readAll := func(t *testing.T, c net.Conn) []byte {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read %q, then %v", b, err)
		}
		return b
	}
	// endsSilently half-closes c and expects the server to end too, with
	// nothing more sent.
	endsSilently := func(t *testing.T, who string, c net.Conn) {
		t.Helper()
		testutil.CloseWrite(t, c)
		if rest := readAll(t, c); len(rest) != 0 {
			t.Errorf("%s: after the half-close sent %q", who, rest)
		}
	}

	for _, name := range []string{"daytime-tcp", "daytime-udp"} {
		t.Run(name, func(t *testing.T) {
			var at []time.Time
			var lines []string
			for _, p := range peers {
				c := p.dial(t, name)
				var got []byte
				if strings.HasSuffix(name, "-udp") {
					got = ask(t, p, c, "")
				} else {
					got = readAll(t, c)
				}
				t.Logf("%s: %q", p.who, got)
				if !daytimeShape.Match(got) {
					t.Fatalf("%s sent %q, not the shape %s", p.who, got, daytimeShape)
				}
				// Within a few seconds of now, in tz's zone abbreviation.
				checkDaytime(t, got, loc)
				when, _ := time.ParseInLocation("02 Jan 2006 15:04:05", string(got[:20]), loc)
				at = append(at, when)
				lines = append(lines, string(got))
			}
			if d := at[1].Sub(at[0]); d < -3*time.Second || d > 3*time.Second {
				t.Errorf("xinetd says %q, netd %q: %v apart", lines[0], lines[1], d)
			}
			if x, n := lines[0][21:], lines[1][21:]; x != n {
				t.Errorf("zone: xinetd says %q, netd %q", x, n)
			}
		})
	}

	for _, name := range []string{"time-tcp", "time-udp"} {
		t.Run(name, func(t *testing.T) {
			var secs []uint32
			for _, p := range peers {
				c := p.dial(t, name)
				var got []byte
				if strings.HasSuffix(name, "-udp") {
					got = ask(t, p, c, "")
				} else {
					got = readAll(t, c)
				}
				t.Logf("%s: % x", p.who, got)
				checkTime(t, got) // 4 bytes, within a few seconds of now
				secs = append(secs, binary.BigEndian.Uint32(got))
			}
			if d := int32(secs[1] - secs[0]); d < -3 || d > 3 {
				t.Errorf("xinetd says %d, netd %d: %d s apart", secs[0], secs[1], d)
			}
		})
	}

	t.Run("chargen-udp", func(t *testing.T) {
		for _, p := range peers {
			c := p.dial(t, "chargen-udp")
			for k, payload := range []string{"", "x"} {
				got := ask(t, p, c, payload)
				// 1024 bytes: 13 lines of 72 and CRLF, then 60 and CRLF.
				if len(got) != 1024 {
					t.Fatalf("%s: datagram %d is %d bytes, want 1024: %q", p.who, k, len(got), got)
				}
				if err := checkChargenLines(got, 60); err != nil {
					t.Fatalf("%s: datagram %d: %v", p.who, k, err)
				}
				if k == 0 {
					t.Logf("%s: first line %q", p.who, got[:74])
				}
				// netd's listener is fresh: its answers start at line 0
				// and go on 14 lines further each time.
				if want := chargenDatagram(14 * k); p.who == "netd" && !bytes.Equal(got, want) {
					t.Errorf("netd: datagram %d is %q, want %q", k, got, want)
				}
			}
		}
	})

	t.Run("chargen-tcp", func(t *testing.T) {
		for _, p := range peers {
			c := p.dial(t, "chargen-tcp")
			got := make([]byte, 200*74) // more than a turn of either ring
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("%s: %v", p.who, err)
			}
			if err := checkChargenLines(got, 0); err != nil {
				t.Fatalf("%s: %v", p.who, err)
			}
			t.Logf("%s: first line %q", p.who, got[:74])
			// xinetd's ring and starting point differ from netd's on
			// purpose (chargen's README); netd's stream is RFC 864's.
			if p.who == "netd" {
				if string(got[:74]) != chargenFirstLine {
					t.Errorf("netd: first line %q, want the README's %q", got[:74], chargenFirstLine)
				}
				if err := checkChargen(got, 0); err != nil {
					t.Errorf("netd: %v", err)
				}
			}
		}
	})

	t.Run("echo-tcp", func(t *testing.T) {
		// Binary bytes, CR, NUL and no final newline: both send each piece
		// back as it comes, and close once the client half-closes.
		pieces := []string{"hello\r\n", "no newline \x00\xff\xfe", strings.Repeat("0123456789", 10000)}
		for _, p := range peers {
			c := p.dial(t, "echo-tcp")
			for _, piece := range pieces {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				testutil.RoundTrip(t, c, piece)
			}
			endsSilently(t, p.who, c)
		}
	})

	t.Run("echo-udp", func(t *testing.T) {
		for _, p := range peers {
			c := p.dial(t, "echo-udp")
			for _, payload := range []string{"ping\n", "\x00\xff binary \r\n", strings.Repeat("z", 1400)} {
				if got := ask(t, p, c, payload); string(got) != payload {
					t.Errorf("%s: echoed %.40q, want %.40q", p.who, got, payload)
				}
			}
		}
	})

	t.Run("discard-tcp", func(t *testing.T) {
		junk := bytes.Repeat([]byte("discard me \x00\xff\r\n"), 4096)
		for _, p := range peers {
			c := p.dial(t, "discard-tcp")
			// Nothing comes back, and the connection stays open while the
			// client keeps it open: the read times out, it does not end.
			for range 2 {
				if _, err := c.Write(junk); err != nil {
					t.Fatalf("%s: %v", p.who, err)
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := c.Read(make([]byte, 1))
				if n != 0 || !isNetTimeout(err) {
					t.Fatalf("%s: read %d bytes, %v; want nothing until the client closes", p.who, n, err)
				}
			}
			// The client's end-of-file ends it, with nothing sent.
			endsSilently(t, p.who, c)
		}
	})

	t.Run("discard-udp", func(t *testing.T) {
		for _, p := range peers {
			c := p.dial(t, "discard-udp")
			for _, payload := range []string{"", "one", strings.Repeat("two", 400)} {
				if got := udpExchange(t, c, payload, 300*time.Millisecond); got != nil {
					t.Errorf("%s: answered %q", p.who, got)
				}
			}
		}
	})
}
