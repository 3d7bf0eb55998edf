package main_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

// The small inetd services, each on TCP and UDP, every port 0.
const inetdConfig = `
log:
  level: info
shutdown_timeout: 5s
listeners:
  - name: discard-tcp
    address: tcp://127.0.0.1:0
    module: discard
  - name: discard-udp
    address: udp://127.0.0.1:0
    module: discard
  - name: daytime-tcp
    address: tcp://127.0.0.1:0
    module: daytime
  - name: daytime-udp
    address: udp://127.0.0.1:0
    module: daytime
  - name: time-tcp
    address: tcp://127.0.0.1:0
    module: time
  - name: time-udp
    address: udp://127.0.0.1:0
    module: time
  - name: chargen-tcp
    address: tcp://127.0.0.1:0
    module: chargen
  - name: chargen-udp
    address: udp://127.0.0.1:0
    module: chargen
  - name: chargen-unix
    address: unix://DIR/chargen.sock
    module: chargen
`

func startInetd(t *testing.T, env []string) *testutil.Daemon {
	t.Helper()
	text := strings.ReplaceAll(inetdConfig, "DIR", t.TempDir())
	return testutil.StartDaemon(t, env, "-c", testutil.WriteConfig(t, "inetd.yaml", text))
}

// rfc868Offset is the seconds from 1900 to 1970.
const rfc868Offset = 2208988800

// chargenRing is RFC 864's ring: the 95 printable ASCII characters.
const chargenRing = ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`" + `abcdefghijklmnopqrstuvwxyz{|}~`

// chargenPeriod is one turn of the TCP pattern: 95 lines of 72 characters
// and CRLF.
var chargenPeriod = func() []byte {
	var b bytes.Buffer
	for n := range len(chargenRing) {
		for i := range 72 {
			b.WriteByte(chargenRing[(n+i)%len(chargenRing)])
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}()

// checkChargen reports whether p is the TCP pattern from byte off on.
func checkChargen(p []byte, off int64) error {
	for i := range p {
		if want := chargenPeriod[(off+int64(i))%int64(len(chargenPeriod))]; p[i] != want {
			return fmt.Errorf("byte %d of the stream is %q, want %q", off+int64(i), p[i], want)
		}
	}
	return nil
}

// chargenDatagram is the UDP answer that starts at line n, as xinetd sends
// it: 13 lines, then the first 60 characters of the next and CRLF.
func chargenDatagram(n int) []byte {
	off := n % len(chargenRing) * 74
	twice := append(append([]byte(nil), chargenPeriod...), chargenPeriod...)
	return append(twice[off:off+1022:off+1022], '\r', '\n')
}

// udpExchange sends payload on c and returns the answer, or nil when none
// comes within wait.
func udpExchange(t *testing.T, c net.Conn, payload string, wait time.Duration) []byte {
	t.Helper()
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

var daytimeLine = regexp.MustCompile(`^(\d\d [A-Z]{3} \d{4} \d\d:\d\d:\d\d) (\S+)\r\n$`)

// checkDaytime checks a daytime line against the clock in loc: within a
// few seconds of now, with loc's zone abbreviation.
func checkDaytime(t *testing.T, got []byte, loc *time.Location) {
	t.Helper()
	m := daytimeLine.FindSubmatch(got)
	if m == nil {
		t.Fatalf("daytime sent %q", got)
	}
	at, err := time.ParseInLocation("02 Jan 2006 15:04:05", string(m[1]), loc)
	if err != nil {
		t.Fatalf("daytime sent %q: %v", got, err)
	}
	if d := time.Since(at); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("daytime sent %q, %v off the clock", got, d)
	}
	if zone, _ := time.Now().In(loc).Zone(); string(m[2]) != zone {
		t.Errorf("daytime sent zone %q, want %q", m[2], zone)
	}
}

// checkTime checks RFC 868's 4 bytes against the clock.
func checkTime(t *testing.T, got []byte) {
	t.Helper()
	if len(got) != 4 {
		t.Fatalf("time sent % x, want 4 bytes", got)
	}
	now := uint32(time.Now().Unix() + rfc868Offset)
	if d := int32(now - binary.BigEndian.Uint32(got)); d < -5 || d > 5 {
		t.Errorf("time sent %d, %d s off the clock (%d)", binary.BigEndian.Uint32(got), d, now)
	}
}

// TestInetdServices: discard, daytime, time and chargen over TCP and UDP
// against the real daemon.
func TestInetdServices(t *testing.T) {
	d := startInetd(t, nil)

	t.Run("discard tcp", func(t *testing.T) {
		c := d.Dial("discard-tcp")
		junk := bytes.Repeat([]byte("discard me \x00\xff\r\n"), 64<<10) // 1 MiB
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
		testutil.CloseWrite(t, c)
		got, err := io.ReadAll(c) // the daemon closes once it read our EOF
		if err != nil || len(got) != 0 {
			t.Fatalf("discard sent %d bytes back, err %v", len(got), err)
		}
	})
	t.Run("discard udp", func(t *testing.T) {
		c := d.Dial("discard-udp")
		for _, p := range []string{"one", "", strings.Repeat("two", 500)} {
			if got := udpExchange(t, c, p, 300*time.Millisecond); got != nil {
				t.Fatalf("discard answered %q", got)
			}
		}
	})

	t.Run("daytime tcp", func(t *testing.T) {
		got, err := io.ReadAll(d.Dial("daytime-tcp"))
		if err != nil {
			t.Fatal(err)
		}
		checkDaytime(t, got, time.Local)
	})
	t.Run("daytime tcp ignores input", func(t *testing.T) {
		c := d.Dial("daytime-tcp")
		_, _ = io.WriteString(c, "hello?\r\n")
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		checkDaytime(t, got, time.Local)
	})
	t.Run("daytime udp", func(t *testing.T) {
		c := d.Dial("daytime-udp")
		for _, p := range []string{"", "what time is it?"} {
			checkDaytime(t, udpExchange(t, c, p, 5*time.Second), time.Local)
		}
	})

	t.Run("time tcp", func(t *testing.T) {
		got, err := io.ReadAll(d.Dial("time-tcp"))
		if err != nil {
			t.Fatal(err)
		}
		checkTime(t, got)
	})
	t.Run("time udp", func(t *testing.T) {
		c := d.Dial("time-udp")
		for _, p := range []string{"", "x"} {
			checkTime(t, udpExchange(t, c, p, 5*time.Second))
		}
	})

	for _, name := range []string{"chargen-tcp", "chargen-unix"} {
		t.Run(name, func(t *testing.T) {
			// Two connections, one after the other: each starts at line 0.
			for range 2 {
				c := d.Dial(name)
				got := make([]byte, 3*len(chargenPeriod)+12345)
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
				if err := checkChargen(got, 0); err != nil {
					t.Fatal(err)
				}
				// Input is ignored; a half-close ends the stream.
				_, _ = io.WriteString(c, "stop, please\n")
				testutil.CloseWrite(t, c)
				if _, err := io.Copy(io.Discard, c); err != nil {
					t.Fatalf("after half-close: %v", err)
				}
			}
		})
	}
	t.Run("chargen udp", func(t *testing.T) {
		c := d.Dial("chargen-udp")
		for k, p := range []string{"", "x", strings.Repeat("y", 1500)} {
			got := udpExchange(t, c, p, 5*time.Second)
			if want := chargenDatagram(14 * k); !bytes.Equal(got, want) {
				t.Fatalf("datagram %d: got %d bytes %q, want %q", k, len(got), got, want)
			}
		}
	})

	t.Run("udp from a privileged port", func(t *testing.T) {
		for _, name := range []string{"daytime-udp", "time-udp", "chargen-udp"} {
			_, addr, _ := strings.Cut(d.Addrs[name], "://")
			raddr, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			var c *net.UDPConn
			for port := 1000; port > 600 && c == nil; port-- {
				c, err = net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, raddr)
				if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
					t.Skip("cannot bind a port below 1024 here:", err)
				}
			}
			if c == nil {
				t.Skip("no free port below 1024:", err)
			}
			got := udpExchange(t, c, "spoofed?", 300*time.Millisecond)
			c.Close()
			if got != nil {
				t.Errorf("%s answered port %d: %q", name, c.LocalAddr().(*net.UDPAddr).Port, got)
			}
			// The service still answers others.
			if udpExchange(t, d.Dial(name), "", 5*time.Second) == nil {
				t.Errorf("%s no longer answers", name)
			}
		}
	})
}

// TestInetdLocalZone: daytime speaks the daemon's local time zone.
func TestInetdLocalZone(t *testing.T) {
	for _, tz := range []string{"Asia/Kolkata", "America/Sao_Paulo"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			t.Skipf("no zone data for %s: %v", tz, err)
		}
		d := startInetd(t, []string{"TZ=" + tz})
		got, err := io.ReadAll(d.Dial("daytime-tcp"))
		if err != nil {
			t.Fatal(err)
		}
		checkDaytime(t, got, loc)
		checkDaytime(t, udpExchange(t, d.Dial("daytime-udp"), "", 5*time.Second), loc)
	}
}

// vmRSS returns a process's resident set size in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// TestChargenSlowReader: clients that read slowly cost the daemon no
// memory, since chargen produces only what the socket takes; then the same
// clients read as fast as they can and get the pattern, unbroken, without a
// stall; on SIGTERM each gets the rest and end-of-file.
func TestChargenSlowReader(t *testing.T) {
	d := startInetd(t, nil)
	pid := d.PID()
	_, addr, _ := strings.Cut(d.Addrs["chargen-tcp"], "://")
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}

	// Warm up: one fast connection, so that the baseline holds the
	// daemon's buffers and pools.
	warm, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = warm.SetDeadline(time.Now().Add(60 * time.Second))
	warmStart := time.Now()
	if _, err := io.CopyN(io.Discard, warm, 64<<20); err != nil {
		t.Fatal(err)
	}
	t.Logf("one fast client with default buffers: 64 MiB in %v (%.0f MiB/s)", time.Since(warmStart), 64/time.Since(warmStart).Seconds())
	warm.Close()
	time.Sleep(100 * time.Millisecond)
	base := vmRSS(t, pid)

	const clients = 16
	conns := make([]net.Conn, clients)
	offs := make([]int64, clients)
	for i := range conns {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}

	// One second of slow reading: 100 bytes per client every 10 ms.
	buf := make([]byte, 64<<10)
	peak := base
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		for i, c := range conns {
			n, err := c.Read(buf[:100])
			if err != nil {
				t.Fatal(err)
			}
			if err := checkChargen(buf[:n], offs[i]); err != nil {
				t.Fatalf("client %d, slow: %v", i, err)
			}
			offs[i] += int64(n)
		}
		peak = max(peak, vmRSS(t, pid))
		time.Sleep(10 * time.Millisecond)
	}
	// Each slow client holds what the kernel buffers plus at most one
	// 16 KiB piece queued in netd; 8 MiB leaves the allocator room.
	if grew := peak - base; grew > 8<<20 {
		t.Errorf("daemon RSS grew by %d KiB with %d slow clients (%d KiB to %d KiB)", grew>>10, clients, base>>10, peak>>10)
	}

	// Then fast: every client reads 4 MiB more, checked byte for byte.
	start := time.Now()
	for i, c := range conns {
		for want := offs[i] + 4<<20; offs[i] < want; {
			// A stall, not a slow machine, is the failure: the deadline
			// runs from the last read, not from the dial.
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := c.Read(buf[:min(int64(len(buf)), want-offs[i])])
			if err != nil {
				t.Fatalf("client %d, fast: %v", i, err)
			}
			if err := checkChargen(buf[:n], offs[i]); err != nil {
				t.Fatalf("client %d, fast: %v", i, err)
			}
			offs[i] += int64(n)
		}
	}
	// For information only: on a loaded machine the rate says more about
	// the machine than about chargen; a stall fails above.
	elapsed := time.Since(start)
	t.Logf("slow phase: RSS %d KiB -> peak %d KiB; fast phase: %d MiB in %v (%.0f MiB/s)",
		base>>10, peak>>10, clients*4, elapsed, float64(clients*4)/elapsed.Seconds())

	// SIGTERM: every client, reading on, gets the rest of the pattern and
	// then end-of-file, and the daemon exits 0.
	errs := make(chan error, clients)
	for i, c := range conns {
		go func() {
			b := make([]byte, 64<<10)
			for {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				n, err := c.Read(b)
				if err == io.EOF {
					errs <- nil
					return
				}
				if err != nil {
					errs <- fmt.Errorf("client %d, draining: %w", i, err)
					return
				}
				if err := checkChargen(b[:n], offs[i]); err != nil {
					errs <- fmt.Errorf("client %d, draining: %w", i, err)
					return
				}
				offs[i] += int64(n)
			}
		}()
	}
	term := time.Now()
	d.Signal(syscall.SIGTERM)
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, d.Log())
	}
	t.Logf("SIGTERM to exit: %v", time.Since(term))
}

// summaryListener is one listener in `netd validate`'s summary:
// "name (address, module)".
var summaryListener = regexp.MustCompile(`([^\s,:]+) \((\S+), ([^\s)]+)\)`)

// listenerModules returns, from `netd validate`'s summary line, the module
// each listener is bound to.
func listenerModules(summary string) map[string]string {
	modules := map[string]string{}
	for _, m := range summaryListener.FindAllStringSubmatch(summary, -1) {
		modules[m[1]] = m[3]
	}
	return modules
}

// probeListener checks that listener name answers as its module does: echo
// echoes, discard answers nothing, daytime, time and chargen send their
// bytes. TestExampleConfigs can dispatch on it for configs that serve more
// than echo.
func probeListener(t *testing.T, d *testutil.Daemon, name, module string) {
	t.Helper()
	udp := strings.HasPrefix(d.Addrs[name], "udp")
	c := d.Dial(name)
	read := func(payload string) []byte {
		t.Helper()
		if udp {
			return udpExchange(t, c, payload, 5*time.Second)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}
	switch module {
	case "echo":
		if !udp {
			testutil.RoundTrip(t, c, "ping\n")
		} else if got := read("ping\n"); string(got) != "ping\n" {
			t.Errorf("%s: echo answered %q", name, got)
		}
	case "discard":
		if udp {
			if got := udpExchange(t, c, "ping\n", 300*time.Millisecond); got != nil {
				t.Errorf("%s: discard answered %q", name, got)
			}
			return
		}
		_, _ = io.WriteString(c, "ping\n")
		testutil.CloseWrite(t, c)
		if got := read(""); len(got) != 0 {
			t.Errorf("%s: discard answered %q", name, got)
		}
	case "daytime":
		checkDaytime(t, read("ping\n"), time.Local)
	case "time":
		checkTime(t, read("ping\n"))
	case "chargen":
		if udp {
			got := read("ping\n")
			for n := range len(chargenRing) {
				if bytes.Equal(got, chargenDatagram(n)) {
					return
				}
			}
			t.Errorf("%s: chargen answered %q", name, got)
			return
		}
		got := make([]byte, 3*74)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := checkChargen(got, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	default:
		t.Errorf("%s: no probe for module %q", name, module)
	}
}

// TestInetdExampleConfigs: configs/inetd.yaml and inetd.hcl validate to
// the same listeners and, with their ports changed to 0, serve every
// service as it should.
func TestInetdExampleConfigs(t *testing.T) {
	port := regexp.MustCompile(`((?:tcp|udp)[46]?://(?:\[[^\]]*\]|[^:/"\s]*)):\d+`)
	var summaries []string
	for _, f := range []string{"../../configs/inetd.yaml", "../../configs/inetd.hcl"} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := testutil.RunNetd(t, nil, "validate", "-c", f)
			if r.Code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			_, summary, _ := strings.Cut(r.Stdout, ": ")
			summaries = append(summaries, summary)
			modules := listenerModules(summary)
			for _, m := range []string{"echo", "discard", "daytime", "time", "chargen"} {
				for _, network := range []string{"tcp", "udp"} {
					if modules[m+"-"+network] != m {
						t.Errorf("no listener %s-%s with module %s in %v", m, network, m, modules)
					}
				}
			}
			path := testutil.WriteConfig(t, filepath.Base(f), port.ReplaceAllString(string(src), "$1:0"))
			d := testutil.StartDaemon(t, nil, "-c", path)
			if len(d.Addrs) != len(modules) {
				t.Fatalf("%d listeners listening, want %d: %v", len(d.Addrs), len(modules), d.Addrs)
			}
			for name, module := range modules {
				probeListener(t, d, name, module)
			}
		})
	}
	if len(summaries) == 2 && summaries[0] != summaries[1] {
		t.Errorf("the twins differ:\nyaml: %s\nhcl:  %s", summaries[0], summaries[1])
	}
}
