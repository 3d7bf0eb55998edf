package daemon

import (
	"context"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
	"github.com/netd/netd/pkg/modules/apitest"
	_ "github.com/netd/netd/pkg/modules/echo"
	_ "github.com/netd/netd/pkg/modules/proxy"
)

// startTestDaemon starts the listeners of config in this process, as Run
// does but without signals or upgrades (tableflip allows one upgrader per
// process), so that a test can reload it and read its metrics registry.
func startTestDaemon(t *testing.T, config string) (*Daemon, string) {
	t.Helper()
	path := testutil.WriteConfig(t, "netd.yaml", config)
	return startSource(t, Source{Path: path}, io.Discard), path
}

// startSource starts src's listeners as startTestDaemon does, logging to w.
func startSource(t *testing.T, src Source, w io.Writer) *Daemon {
	t.Helper()
	d, err := New(Options{Source: src, Log: w})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.stopAdmin()
		_ = d.engine.Shutdown(ctx)
	})
	return d
}

// dialListener connects to the running listener name (testutil.Dial).
func dialListener(t *testing.T, d *Daemon, name string) net.Conn {
	t.Helper()
	addr, ok := d.Addrs()[name]
	if !ok {
		t.Fatalf("no listener %q in %v", name, d.Addrs())
	}
	return testutil.Dial(t, addr)
}

// series gathers the daemon's registry (apitest.Series).
func series(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	return apitest.Series(t, d.metrics.Registry())
}

// waitSeries waits until every series in want has its value, and returns
// the last scrape.
func waitSeries(t *testing.T, d *Daemon, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := series(t, d)
		ok := true
		for k, v := range want {
			if g, present := got[k]; !present || g != v {
				ok = false
			}
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			for k, v := range want {
				if g, present := got[k]; !present || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, present, v)
				}
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ofListener returns the series that carry listener="name".
func ofListener(all map[string]float64, name string) []string {
	var out []string
	for k := range all {
		if strings.Contains(k, "listener="+name+",") || strings.Contains(k, "listener="+name+"}") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func reloadTo(t *testing.T, d *Daemon, path, config string) error {
	t.Helper()
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return d.Reload()
}

const forgetBefore = `
listeners:
  - {name: keep, address: tcp://127.0.0.1:0, module: echo}
  - {name: change, address: tcp://127.0.0.1:0, module: echo, options: {mode: raw}}
  - {name: gone, address: tcp://127.0.0.1:0, module: echo}
  - {name: pgone, address: tcp://127.0.0.1:0, module: proxy, options: {upstreams: [tcp://127.0.0.1:1]}}
  - {name: swap, address: tcp://127.0.0.1:0, module: proxy, options: {upstreams: [tcp://127.0.0.1:1]}}
`

const forgetAfter = `
listeners:
  - {name: keep, address: tcp://127.0.0.1:0, module: echo}
  - {name: change, address: tcp://127.0.0.1:0, module: echo, options: {mode: line}}
  - {name: swap, address: tcp://127.0.0.1:0, module: echo}
`

// forgetFailed adds a proxy listener but fails on an echo option.
const forgetFailed = forgetAfter + `
  - {name: extra, address: tcp://127.0.0.1:0, module: proxy, options: {upstreams: [tcp://127.0.0.1:1]}}
  - {name: bad, address: tcp://127.0.0.1:0, module: echo, options: {mode: bogus}}
`

// TestReloadForgetsEndedListeners: a reload takes every series of a
// listener it removes off the registry, the loop's and its module's, even
// while the listener still drains a connection; a listener whose name
// goes to another module starts from zero without its old module's
// series; a listener kept under its name and module counts on, its
// replaced instance's draining connection included; and a failed reload
// leaves no series of a listener it would have added.
func TestReloadForgetsEndedListeners(t *testing.T) {
	d, path := startTestDaemon(t, forgetBefore)
	keep, change, gone := dialListener(t, d, "keep"), dialListener(t, d, "change"), dialListener(t, d, "gone")
	testutil.RoundTrip(t, keep, "keep\n")
	testutil.RoundTrip(t, change, "raw")
	testutil.RoundTrip(t, gone, "gone\n")
	// The proxy's upstream refuses: the client is accepted, then closed.
	swapped := dialListener(t, d, "swap")
	if _, err := io.ReadAll(swapped); err != nil {
		t.Fatal(err)
	}
	before := waitSeries(t, d, map[string]float64{
		"netd_connections_accepted_total{listener=keep}":                                                          1,
		"netd_connections_accepted_total{listener=change}":                                                        1,
		"netd_connections_accepted_total{listener=gone}":                                                          1,
		"netd_connections_active{listener=gone}":                                                                  1,
		"netd_connections_accepted_total{listener=swap}":                                                          1,
		"netd_connections_active{listener=swap}":                                                                  0,
		"netd_proxy_upstream_connects_total{listener=pgone,module=proxy,result=ok,upstream=tcp://127.0.0.1:1}":    0,
		"netd_proxy_upstream_connects_total{listener=swap,module=proxy,result=failed,upstream=tcp://127.0.0.1:1}": 1,
	})
	for _, name := range []string{"gone", "pgone", "swap"} {
		if len(ofListener(before, name)) == 0 {
			t.Fatalf("no series of %s before the reload", name)
		}
	}

	if err := reloadTo(t, d, path, forgetAfter); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := series(t, d)
	for _, name := range []string{"gone", "pgone"} {
		if s := ofListener(after, name); len(s) != 0 {
			t.Errorf("removed listener %s still has series: %v", name, s)
		}
	}
	for _, k := range ofListener(after, "swap") {
		if strings.Contains(k, "module=proxy") {
			t.Errorf("swap runs echo now; its proxy series is still there: %s", k)
		}
	}
	waitSeries(t, d, map[string]float64{
		"netd_connections_accepted_total{listener=swap}":   0, // a new listener: its proxy's counts are not its
		"netd_connections_accepted_total{listener=keep}":   1,
		"netd_connections_accepted_total{listener=change}": 1, // the replaced instance's, draining
		"netd_connections_active{listener=change}":         1,
	})
	// The removed listener's connection is still served, uncounted.
	testutil.RoundTrip(t, gone, "still served\n")
	if s := ofListener(series(t, d), "gone"); len(s) != 0 {
		t.Errorf("removed listener's series came back: %v", s)
	}

	// The kept listener counts on: the old instance's connection closes
	// (its counts fold into the totals), a new one comes.
	change.Close()
	fresh := dialListener(t, d, "change")
	testutil.RoundTrip(t, fresh, "line mode\n")
	fresh.Close()
	testutil.RoundTrip(t, dialListener(t, d, "swap"), "swap echoes\n")
	waitSeries(t, d, map[string]float64{
		"netd_connections_accepted_total{listener=change}":             2,
		"netd_connections_closed_total{listener=change,reason=client}": 2,
		"netd_connections_active{listener=change}":                     0,
		"netd_connections_accepted_total{listener=swap}":               1,
		"netd_connections_accepted_total{listener=keep}":               1,
	})

	// A failed reload changes no series: none for the proxy it would have
	// added.
	if err := reloadTo(t, d, path, forgetFailed); err == nil {
		t.Fatal("a reload with a bad option succeeded")
	}
	if s := ofListener(series(t, d), "extra"); len(s) != 0 {
		t.Errorf("a failed reload left series of a listener it would have added: %v", s)
	}
	testutil.RoundTrip(t, keep, "keep, after a failed reload\n")
	waitSeries(t, d, map[string]float64{
		"netd_connections_accepted_total{listener=keep}":   1,
		"netd_connections_accepted_total{listener=change}": 2,
		"netd_connections_accepted_total{listener=swap}":   1,
	})
}
