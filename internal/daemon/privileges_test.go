package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/netd/netd/internal/testutil"
)

// TestDropPrivilegesRefusals: a group without a user, an unknown user or
// group, and a uid the user database does not know without a group, are
// errors that name them; running already as the
// configured user is no drop, and the log says so.
func TestDropPrivilegesRefusals(t *testing.T) {
	var log testutil.SyncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &log})
	if err := dropPrivileges("", "daemon", logger); err == nil || !strings.Contains(err.Error(), `group "daemon" without user`) {
		t.Errorf("group without user: %v", err)
	}
	if err := dropPrivileges("no-such-user-netd", "", logger); err == nil || !strings.Contains(err.Error(), "no-such-user-netd") {
		t.Errorf("unknown user: %v", err)
	}
	if err := dropPrivileges("4000000", "", logger); err == nil || !strings.Contains(err.Error(), "user 4000000 is not in the user database") {
		t.Errorf("unknown uid without group: %v", err)
	}
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	if err := dropPrivileges(me.Username, "no-such-group-netd", logger); err == nil || !strings.Contains(err.Error(), "no-such-group-netd") {
		t.Errorf("unknown group: %v", err)
	}
	if me.Gid != fmt.Sprint(os.Getgid()) {
		t.Skipf("running with gid %d, not %s's primary group", os.Getgid(), me.Username)
	}
	if err := dropPrivileges(me.Username, "", logger); err != nil {
		t.Fatalf("drop to the user already running: %v", err)
	}
	if !strings.Contains(log.String(), "no privilege drop needed") {
		t.Errorf("no log line says the drop was skipped:\n%s", log.String())
	}
}

// TestAdminServedAfterDrop: the admin socket is bound before the
// privilege drop (it exists and takes connections while the drop runs)
// but served only after it: a request sent during the drop is answered
// once the drop is over, never while it runs.
func TestAdminServedAfterDrop(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	path := filepath.Join(dir, "netd.yaml")
	cfg := fmt.Sprintf("admin:\n  address: unix://%s\nlisteners:\n  - {name: e, address: 'tcp://127.0.0.1:0', module: echo}\n", sock)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code   int
		during bool // the answer came while the drop was under way
		err    error
	}
	answers := make(chan answer, 1)
	inDrop := make(chan struct{})
	var dropping atomic.Bool
	orig := dropPrivs
	t.Cleanup(func() { dropPrivs = orig })
	dropPrivs = func(string, string, hclog.Logger) error {
		dropping.Store(true)
		defer dropping.Store(false)
		close(inDrop)
		if _, err := os.Stat(sock); err != nil {
			t.Errorf("admin socket not bound before the drop: %v", err)
		}
		go func() {
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				}}}
			resp, err := c.Get("http://localhost/healthz")
			a := answer{err: err, during: dropping.Load()}
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				a.code = resp.StatusCode
			}
			c.CloseIdleConnections()
			answers <- a
		}()
		// Served before the drop, the request would be answered well
		// within this second; not served, it waits.
		time.Sleep(time.Second)
		return nil
	}
	var log testutil.SyncBuffer
	d, err := New(Options{Source: FindSource(path), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx, make(chan os.Signal), false) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("run did not return")
		}
	}()
	select {
	case <-inDrop:
	case <-time.After(20 * time.Second):
		t.Fatalf("the drop never ran:\n%s", log.String())
	}
	select {
	case a := <-answers:
		if a.err != nil || a.code != 200 {
			t.Fatalf("GET /healthz sent during the drop: %d, %v", a.code, a.err)
		}
		if a.during {
			t.Fatal("the admin endpoint answered while privileges were still being dropped")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("GET /healthz sent during the drop was never answered:\n%s", log.String())
	}
}
