package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netd/netd/internal/testutil"
)

// TestDrainDelay: on SIGTERM /readyz turns 503 at once while new connects
// are still served, for drain_delay; then the listeners close and the
// daemon drains and stops. The delay ends by itself, or at once on a
// second SIGTERM; SIGHUP and the admin reload are refused meanwhile.
func TestDrainDelay(t *testing.T) {
	cases := []struct {
		name  string
		delay string
		// second checks serving within the delay, then sends a second
		// SIGTERM to end it.
		second bool
	}{
		{"delay ends by itself", "300ms", false},
		{"second signal skips it", "1h", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "netd.yaml")
			conf := fmt.Sprintf("drain_delay: %s\nshutdown_timeout: 10s\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n  - name: echo\n    address: tcp://127.0.0.1:0\n    module: echo\n", tc.delay)
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			var log testutil.SyncBuffer
			d, err := New(Options{Source: Source{Path: path}, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			signals := make(chan os.Signal, 1)
			runErr := make(chan error, 1)
			go func() { runErr <- d.run(context.Background(), signals, false) }()
			waitLog(t, &log, "netd: listening:") // not admin's "admin endpoint listening"
			readyz := "http://" + d.admin.Addr().String() + "/readyz"
			if code := httpStatus(t, readyz); code != http.StatusOK {
				t.Fatalf("/readyz before SIGTERM: %d, want 200", code)
			}
			old := dialListener(t, d, "echo")
			testutil.RoundTrip(t, old, "before\n")
			_, echoAddr, _ := strings.Cut(d.Addrs()["echo"], "://")

			signals <- syscall.SIGTERM
			stopping := waitLog(t, &log, "stopping")[0]
			if !strings.Contains(stopping, "drain_delay="+tc.delay) {
				t.Errorf("the stopping line does not give the delay %s: %s", tc.delay, stopping)
			}
			if tc.second {
				// The delay is long: what follows happens within it.
				if code := httpStatus(t, readyz); code != http.StatusServiceUnavailable {
					t.Errorf("/readyz during drain_delay: %d, want 503", code)
				}
				if err := d.reloadFromAdmin(); err == nil {
					t.Error("a reload during drain_delay was accepted")
				}
				// A connect made during the delay is served, as is one open before.
				during := dialListener(t, d, "echo")
				testutil.RoundTrip(t, during, "during the delay\n")
				during.Close()
				testutil.RoundTrip(t, old, "old, during the delay\n")
				signals <- syscall.SIGHUP
				waitLog(t, &log, "signal ignored")
				if strings.Contains(log.String(), "draining") {
					t.Fatalf("drained before the 1h drain_delay ended:\n%s", log.String())
				}
				signals <- syscall.SIGTERM
				waitLog(t, &log, "drain_delay cut short")
			}
			waitLog(t, &log, "draining")
			old.Close()
			select {
			case err := <-runErr:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("run did not return after the drain")
			}
			waitLog(t, &log, "stopped")
			c, err := net.DialTimeout("tcp", echoAddr, 5*time.Second)
			if err == nil {
				c.Close()
				t.Fatalf("connect to %s after the drain succeeded, want refused", echoAddr)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("connect after the drain: %v, want connection refused", err)
			}
		})
	}
}

// httpStatus GETs url and returns the status code.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	return resp.StatusCode
}
