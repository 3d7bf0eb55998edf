package main_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

const reloadBefore = `
shutdown_timeout: 5s
listeners:
  - name: keep
    address: tcp://127.0.0.1:0
    module: echo
  - name: change
    address: tcp://127.0.0.1:0
    module: echo
    options:
      mode: raw
  - name: gone
    address: unix://DIR/gone.sock
    module: echo
`

const reloadAfter = `
shutdown_timeout: 5s
listeners:
  - name: keep
    address: tcp://127.0.0.1:0
    module: echo
  - name: change
    address: tcp://127.0.0.1:0
    module: echo
    options:
      mode: line
  - name: added
    address: tcp://127.0.0.1:0
    module: echo
`

// TestReloadOnSIGHUP: added, removed, changed and unchanged listeners, with
// clients connected throughout; then a broken config changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := testutil.WriteConfig(t, "netd.yaml", strings.ReplaceAll(reloadBefore, "DIR", dir))
	d := testutil.StartDaemon(t, nil, "-c", path)
	keep, change, gone := d.Dial("keep"), d.Dial("change"), d.Dial("gone")
	testutil.RoundTrip(t, keep, "keep\n")
	testutil.RoundTrip(t, change, "raw, no newline")
	testutil.RoundTrip(t, gone, "gone\n")

	// Reload with port 0 listeners unchanged: they keep their sockets.
	if err := os.WriteFile(path, []byte(reloadAfter), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := len(d.Log())
	d.Signal(syscall.SIGHUP)
	added := d.WaitLog(regexp.MustCompile(`listener added.*address=(\S+)`), mark)
	d.WaitLog(regexp.MustCompile(`reload: done`), mark)

	testutil.RoundTrip(t, keep, "keep, same connection\n")
	testutil.RoundTrip(t, change, "old connection, old settings: raw")
	testutil.RoundTrip(t, gone, "removed listener, connection finishes\n")

	fresh := d.Dial("change") // same address, new settings: line mode
	if _, err := io.WriteString(fresh, "partial"); err != nil {
		t.Fatal(err)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := fresh.Read(make([]byte, 16)); err == nil {
		t.Fatalf("new connection answered %d bytes of a partial line: still raw mode", n)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(fresh, " line\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("partial line\n"))
	if _, err := io.ReadFull(fresh, got); err != nil || string(got) != "partial line\n" {
		t.Fatalf("new connection: %q, %v", got, err)
	}

	if _, err := net.DialTimeout("unix", dir+"/gone.sock", time.Second); err == nil {
		t.Fatal("removed unix listener still accepts")
	}
	_, address, _ := strings.Cut(added[1], "://")
	c, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatalf("added listener: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	testutil.RoundTrip(t, c, "added\n")

	// A broken config is logged with its position and changes nothing.
	if err := os.WriteFile(path, []byte("listeners:\n  - name: keep\n    adress: tcp://127.0.0.1:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark = len(d.Log())
	d.Signal(syscall.SIGHUP)
	d.WaitLog(regexp.MustCompile(`reload failed.*`+regexp.QuoteMeta(path)+`:3:5`), mark)
	testutil.RoundTrip(t, keep, "keep, after a failed reload\n")
	testutil.RoundTrip(t, c, "added, after a failed reload\n")

	d.Signal(syscall.SIGTERM)
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestReloadWatermarks: changing a listener's watermarks is a change: the
// listener is replaced on its socket, and its open connection goes on.
func TestReloadWatermarks(t *testing.T) {
	const before = "listeners:\n  - {name: w, address: tcp://127.0.0.1:0, module: echo}\n"
	const after = "listeners:\n  - {name: w, address: tcp://127.0.0.1:0, module: echo, high_watermark: 65536, low_watermark: 16384}\n"
	path := testutil.WriteConfig(t, "netd.yaml", before)
	d := testutil.StartDaemon(t, nil, "-c", path)
	c := d.Dial("w")
	testutil.RoundTrip(t, c, "before\n")
	if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := len(d.Log())
	d.Signal(syscall.SIGHUP)
	d.WaitLog(regexp.MustCompile(`reload: listener replaced on its socket: listener=w`), mark)
	d.WaitLog(regexp.MustCompile(`reload: done.* changed=1`), mark)
	testutil.RoundTrip(t, c, "after, same connection\n")
	testutil.RoundTrip(t, d.Dial("w"), "after, new connection\n")
}

// TestReloadRemovesListenerSeries: a reload through the admin endpoint
// that removes a listener takes its series off /metrics, the loop's
// (netd_connections_*) and its module's (netd_proxy_*), while the listener
// it keeps keeps its series and counts on.
func TestReloadRemovesListenerSeries(t *testing.T) {
	port := testutil.FreePort(t)
	up := startUpstream(t, "up", nil)
	const listener = `
  - name: %s
    address: tcp://127.0.0.1:0
    module: proxy
    options: {upstreams: ["%s"]}`
	keep := fmt.Sprintf(listener, "keep", up.url())
	head := fmt.Sprintf("shutdown_timeout: 5s\nadmin:\n  address: 127.0.0.1:%d\n  reload: true\nlisteners:", port)
	path := testutil.WriteConfig(t, "netd.yaml", head+keep+fmt.Sprintf(listener, "gone", up.url())+"\n")
	d := testutil.StartDaemon(t, nil, "-c", path)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	proxied := func(name string) {
		t.Helper()
		c := d.Dial(name)
		if got := readLine(t, c); got != "up" {
			t.Fatalf("%s: greeting %q, want up", name, got)
		}
		testutil.RoundTrip(t, c, "through "+name+"\n")
		c.Close()
	}
	connects := func(name string) string {
		return fmt.Sprintf(`netd_proxy_upstream_connects_total{listener="%s",module="proxy",result="ok",upstream="%s"}`, name, up.url())
	}
	// scrapeUntil scrapes until every series has its value, then returns
	// the last scrape for the assertions that follow.
	scrapeUntil := func(want map[string]float64) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, text := httpGet(t, base+"/metrics")
			done := true
			for series, v := range want {
				if !strings.Contains(text, "\n"+series+" ") || metricValue(t, text, series) != v {
					done = false
				}
			}
			if done {
				return text
			}
			if time.Now().After(deadline) {
				t.Fatalf("series never reached %v:\n%s", want, text)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	proxied("keep")
	proxied("gone")
	before := scrapeUntil(map[string]float64{
		`netd_connections_accepted_total{listener="keep"}`: 1,
		`netd_connections_accepted_total{listener="gone"}`: 1,
		`netd_connections_active{listener="gone"}`:         0,
		connects("keep"): 1,
		connects("gone"): 1,
	})
	if !strings.Contains(before, `listener="gone"`) {
		t.Fatal("no series of gone before the reload")
	}

	if err := os.WriteFile(path, []byte(head+keep+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := testutil.RunNetd(t, nil, "reload", "-c", path); r.Code != 0 {
		t.Fatalf("netd reload: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	_, after := httpGet(t, base+"/metrics")
	if v := metricValue(t, after, `netd_reloads_total{result="ok"}`); v != 1 {
		t.Fatalf("reloads ok = %v, want 1", v)
	}
	for _, line := range strings.Split(after, "\n") {
		if strings.Contains(line, `listener="gone"`) {
			t.Errorf("removed listener's series still served: %s", line)
		}
	}
	if v := metricValue(t, after, `netd_connections_accepted_total{listener="keep"}`); v != 1 {
		t.Errorf("kept listener: accepted = %v after the reload, want 1", v)
	}
	if v := metricValue(t, after, connects("keep")); v != 1 {
		t.Errorf("kept listener: %s = %v after the reload, want 1", connects("keep"), v)
	}

	proxied("keep")
	scrapeUntil(map[string]float64{
		`netd_connections_accepted_total{listener="keep"}`: 2,
		connects("keep"): 2,
	})
}
