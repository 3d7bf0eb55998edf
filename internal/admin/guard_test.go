package admin

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHostAllowList: over TCP only requests whose Host names this
// endpoint are served; a DNS rebinding page's Host (and Origin) is
// refused before any route runs, a reload included.
func TestHostAllowList(t *testing.T) {
	reloads := 0
	s := start(t, Config{Source: &fakeSource{ready: true}, Reload: func() error { reloads++; return nil }})
	port := s.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		method, path, host, origin string
		want                       int
	}{
		{"GET", "/healthz", "127.0.0.1", "", 200},
		{"GET", "/healthz", "127.0.0.1:" + itoa(port), "", 200},
		{"GET", "/healthz", "127.0.0.2:" + itoa(port), "", 200},
		{"GET", "/healthz", "localhost:" + itoa(port), "", 200},
		{"GET", "/healthz", "LOCALHOST.", "", 200},
		{"GET", "/healthz", "netd.localhost", "", 200},
		{"GET", "/healthz", "[::1]:" + itoa(port), "", 200},
		{"GET", "/metrics", "evil.example:" + itoa(port), "", 421},
		{"GET", "/healthz", "evil.example", "", 421},
		{"GET", "/healthz", "localhost.evil.example", "", 421},
		{"GET", "/healthz", "10.1.2.3", "", 421},
		{"POST", "/-/reload", "evil.example:" + itoa(port), "http://evil.example:" + itoa(port), 421},
		{"POST", "/-/reload", "127.0.0.1:" + itoa(port), "http://evil.example", 403},
		{"POST", "/-/reload", "127.0.0.1:" + itoa(port), "null", 403},
		{"POST", "/-/reload", "127.0.0.1:" + itoa(port), "http://127.0.0.1:" + itoa(port), 200},
		{"POST", "/-/reload", "127.0.0.1:" + itoa(port), "", 200},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		code, body := doHost(t, s, tc.method, tc.path, tc.host, h)
		if code != tc.want {
			t.Errorf("%s %s Host %q Origin %q = %d %q, want %d", tc.method, tc.path, tc.host, tc.origin, code, body, tc.want)
		}
		if code >= 400 && strings.Count(body, "\n") != 1 {
			t.Errorf("refusal is not one line: %q", body)
		}
	}
	if reloads != 2 {
		t.Errorf("%d reloads ran, want 2 (only the same-origin POSTs)", reloads)
	}
}

// TestHostAllowListConfigured: the configured host is allowed, even when
// it is not a loopback name.
func TestHostAllowListConfigured(t *testing.T) {
	c := newHostCheck("Admin.Internal:9900")
	if !c.allowed("admin.internal:9900", nil) || !c.allowed("ADMIN.internal.", nil) {
		t.Error("the configured host is refused")
	}
	if c.allowed("other.internal:9900", nil) {
		t.Error("another host is allowed")
	}
	local := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9900}
	if !newHostCheck(":9900").allowed("192.0.2.7:9900", local) {
		t.Error("the IP the request arrived at is refused on a wildcard address")
	}
	if newHostCheck(":9900").allowed("192.0.2.8:9900", local) {
		t.Error("another IP is allowed")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// doHost is do with a Host header of the test's choosing.
func doHost(t *testing.T, s *Server, method, path, host string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+s.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}
