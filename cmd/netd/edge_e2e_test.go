package main_test

// End-to-end tests of the edge of a listener (issue 10) against the real
// daemon: a real HAProxy sending PROXY protocol v2 in front of netd, and a
// flood of refused connects.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

// dialFromIP connects to address from the local address ip.
func dialFromIP(t *testing.T, ip, address string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", address)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", address, ip, err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// hostPort strips the scheme of a listener's address.
func hostPort(t *testing.T, d *testutil.Daemon, name string) string {
	t.Helper()
	addr, ok := d.Addrs[name]
	if !ok {
		t.Fatalf("no listener %q in %v", name, d.Addrs)
	}
	_, hp, _ := strings.Cut(addr, "://")
	return hp
}

// TestHAProxySendProxyV2: HAProxy in front of netd with send-proxy-v2;
// the exec module's child sees the address of HAProxy's client in
// TCPREMOTEIP, not HAProxy's own, and so does the access log.
func TestHAProxySendProxyV2(t *testing.T) {
	haproxy := lookProgram(t, "haproxy", "haproxy")
	dir := t.TempDir()
	cfg := testutil.WriteConfig(t, "netd.yaml", `log: {level: info}
listeners:
  - name: x
    address: tcp://127.0.0.1:0
    module: exec
    access_log: true
    proxy_protocol: {mode: require, trusted: [127.0.0.1]}
    options:
      command: /bin/sh
      args: [-c, 'echo "$TCPREMOTEIP $TCPREMOTEPORT"']
`)
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	front := testutil.FreePort(t)
	hcfg := fmt.Sprintf(`global
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 20s
  timeout server 20s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server netd %s send-proxy-v2 source 127.0.0.1
`, front, hostPort(t, d, "x"))
	hpath := dir + "/haproxy.cfg"
	if err := os.WriteFile(hpath, []byte(hcfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := startPeer(t, nil, haproxy, "-f", hpath, "-db")
	address := "127.0.0.1:" + strconv.Itoa(front)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if hp.exited() || time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v\n%s", address, err, hp.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, from := range []string{"127.0.0.5", "127.0.0.6"} {
		c := dialFromIP(t, from, address)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().(*net.TCPAddr)
		if want := fmt.Sprintf("%s %d\n", from, local.Port); string(b) != want {
			t.Errorf("the child saw %q, want %q (HAProxy's client)\nhaproxy: %s\nnetd: %s", b, want, hp.out.String(), d.Log())
		}
		if !pollLog(d, "remote="+from+":"+strconv.Itoa(local.Port)) {
			t.Errorf("no access line for %s:%d:\n%s", from, local.Port, d.Log())
		}
	}
	// A client that reaches netd without HAProxy sends no header: refused.
	direct := dialFromIP(t, "127.0.0.1", hostPort(t, d, "x"))
	_, _ = direct.Write([]byte("hello\n"))
	if b, _ := io.ReadAll(direct); len(b) != 0 {
		t.Errorf("a direct client without a header got %q", b)
	}
}

// pollLog waits (bounded) for s to appear in the daemon's log.
func pollLog(d *testutil.Daemon, s string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Log(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// procStat reads a process's resident memory (kB) and CPU time.
func procStat(t *testing.T, pid int) (rssKB int, cpu time.Duration) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKB, _ = strconv.Atoi(f[1])
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which ends with the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return rssKB, time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// TestRefusedFlood: 10,000 connects from a denied source leave the daemon
// serving another source throughout, with bounded memory; every refusal is
// counted, and the refusal lines are rate-limited.
func TestRefusedFlood(t *testing.T) {
	admin := testutil.FreePort(t)
	cfg := testutil.WriteConfig(t, "netd.yaml", fmt.Sprintf(`log: {level: info}
admin: {address: "127.0.0.1:%d"}
listeners:
  - name: guarded
    address: tcp://127.0.0.1:0
    module: echo
    deny: [127.0.0.2]
`, admin))
	d := testutil.StartDaemon(t, nil, "-c", cfg)
	address := hostPort(t, d, "guarded")

	good := dialFromIP(t, "127.0.0.1", address)
	r := bufio.NewReader(good)
	ping := func(i int) {
		line := fmt.Sprintf("ping %d\n", i)
		_ = good.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(good, line); err != nil {
			t.Fatalf("the allowed client: %v", err)
		}
		if got, err := r.ReadString('\n'); err != nil || got != line {
			t.Fatalf("the allowed client got %q, %v", got, err)
		}
	}
	ping(0)
	// Warm up so that the baseline holds the runtime's usual heap.
	floodDenied(t, address, 500)
	rss0, cpu0 := procStat(t, d.PID())

	const flood = 10000
	stop := make(chan struct{})
	var pings atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			line := fmt.Sprintf("during %d\n", i)
			_ = good.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(good, line); err != nil {
				return
			}
			if got, err := r.ReadString('\n'); err != nil || got != line {
				return
			}
			pings.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	floodDenied(t, address, flood)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	rss1, cpu1 := procStat(t, d.PID())
	ping(1) // still served after the flood

	if pings.Load() == 0 {
		t.Error("the allowed client was not served during the flood")
	}
	growth := rss1 - rss0
	t.Logf("flood of %d denied connects in %v: daemon CPU %v, RSS %d kB -> %d kB (%+d kB); %d round trips of another client meanwhile",
		flood, elapsed.Round(time.Millisecond), (cpu1 - cpu0).Round(time.Millisecond), rss0, rss1, growth, pings.Load())
	// Generous: a refused connect holds no state at all, so what grows is
	// the runtime's, not a per-connection cost (10,000 x 1 kB would be
	// 10 MB).
	if growth > 32<<10 {
		t.Errorf("RSS grew by %d kB over %d refused connects", growth, flood)
	}

	_, text := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if got := metricValue(t, text, `netd_connections_refused_total{listener="guarded",reason="denied"}`); got != flood+500 {
		t.Errorf("refused{denied} = %v, want %d", got, flood+500)
	}
	if n := strings.Count(d.Log(), "connection refused"); n > int(elapsed/time.Second)+5 {
		t.Errorf("%d refusal lines in %v: not rate-limited", n, elapsed)
	}
}

// floodDenied makes n connects from 127.0.0.2 to address, 8 at a time,
// each waiting for the server to close it.
func floodDenied(t *testing.T, address string, n int) {
	t.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			b := make([]byte, 16)
			for next.Add(1) <= int64(n) {
				c, err := d.Dial("tcp", address)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				k, err := c.Read(b)
				c.Close()
				if k > 0 || err == nil {
					failed.Store(fmt.Sprintf("a denied client read %q", b[:k]))
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
}
