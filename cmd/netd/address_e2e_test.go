package main_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/netd/netd/internal/testutil"
)

// TestLocalhostInAnyCase: an address that netd validate accepts, netd
// serve binds and dials. tcp://LOCALHOST:0 once passed validate and failed
// serve, because config and loop each had their own parser; a proxy's
// upstream had a third.
func TestLocalhostInAnyCase(t *testing.T) {
	up := startUpstream(t, "up", nil)
	_, port, _ := strings.Cut(up.l.Addr().String(), ":")
	path := testutil.WriteConfig(t, "netd.yaml", fmt.Sprintf(`listeners:
  - name: echo
    address: tcp://LOCALHOST:0
    module: echo
  - name: proxy
    address: tcp6://LocalHost:0
    module: proxy
    options:
      upstreams: [tcp://Localhost:%s]
`, port))
	r := testutil.RunNetd(t, nil, "validate", "-c", path)
	if r.Code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	d := testutil.StartDaemon(t, nil, "-c", path)
	if a := d.Addrs["echo"]; !strings.HasPrefix(a, "tcp://127.0.0.1:") {
		t.Errorf("echo listens on %q, want tcp://127.0.0.1:PORT", a)
	}
	if a := d.Addrs["proxy"]; !strings.HasPrefix(a, "tcp6://[::1]:") {
		t.Errorf("proxy listens on %q, want tcp6://[::1]:PORT", a)
	}
	testutil.RoundTrip(t, d.Dial("echo"), "hello\n")
	c := d.Dial("proxy")
	if got := readLine(t, c); got != "up" {
		t.Fatalf("through the proxy: greeting %q, want up", got)
	}
	testutil.RoundTrip(t, c, "hello\n")
}
