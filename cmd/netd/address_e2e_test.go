package main_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestLocalhostInAnyCase: an address that netd validate accepts, netd
// serve binds and dials. tcp://LOCALHOST:0 once passed validate and failed
// serve, because config and loop each had their own parser; a proxy's
// upstream had a third.
func TestLocalhostInAnyCase(t *testing.T) {
	up := startUpstream(t, "up", nil)
	_, port, _ := strings.Cut(up.l.Addr().String(), ":")
	path := writeConfig(t, "netd.yaml", fmt.Sprintf(`listeners:
  - name: echo
    address: tcp://LOCALHOST:0
    module: echo
  - name: proxy
    address: tcp6://LocalHost:0
    module: proxy
    options:
      upstreams: [tcp://Localhost:%s]
`, port))
	r := runNetd(t, nil, "validate", "-c", path)
	if r.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d := startDaemon(t, nil, "-c", path)
	if a := d.addrs["echo"]; !strings.HasPrefix(a, "tcp://127.0.0.1:") {
		t.Errorf("echo listens on %q, want tcp://127.0.0.1:PORT", a)
	}
	if a := d.addrs["proxy"]; !strings.HasPrefix(a, "tcp6://[::1]:") {
		t.Errorf("proxy listens on %q, want tcp6://[::1]:PORT", a)
	}
	roundTrip(t, d.dial("echo"), "hello\n")
	c := d.dial("proxy")
	if got := readLine(t, c); got != "up" {
		t.Fatalf("through the proxy: greeting %q, want up", got)
	}
	roundTrip(t, c, "hello\n")
}
