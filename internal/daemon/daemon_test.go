package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netd/netd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLog waits until the log has a line containing substr and returns
// that line and every line after it.
func waitLog(t *testing.T, log *testutil.SyncBuffer, substr string) []string {
	t.Helper()
	m := testutil.WaitLog(t, log, regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(substr)+`(?s:.*)`), 0)
	return strings.Split(strings.TrimSuffix(m[0], "\n"), "\n")
}

// TestFindSource: -c names the config as given; without it ./netd.yaml
// in the working directory, else the embedded default.
func TestFindSource(t *testing.T) {
	cases := []struct {
		name      string
		flag      string
		localFile bool
		wantName  string
		embedded  bool
	}{
		{"flag", "conf/x.hcl", true, "conf/x.hcl", false},
		{"working directory", "", true, "./netd.yaml", false},
		{"embedded", "", false, "embedded default", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.localFile {
				if err := os.WriteFile(filepath.Join(dir, "netd.yaml"), []byte("listeners: []\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			src := FindSource(tc.flag)
			if src.Name() != tc.wantName || src.Embedded() != tc.embedded {
				t.Fatalf("FindSource(%q) = %q (embedded %v), want %q (embedded %v)", tc.flag, src.Name(), src.Embedded(), tc.wantName, tc.embedded)
			}
		})
	}
}

// TestEmbeddedDefault runs the embedded default (on a free port instead
// of 8888) through run: its listening line names it, it echoes, SIGHUP
// logs one line saying why it cannot reload (and counts a failed reload)
// and serving goes on, and a done context drains it.
func TestEmbeddedDefault(t *testing.T) {
	orig := defaultConfig
	free := bytes.Replace(orig, []byte("tcp://127.0.0.1:8888"), []byte("tcp://127.0.0.1:0"), 1)
	if bytes.Equal(free, orig) {
		t.Fatalf("the embedded default does not listen on tcp://127.0.0.1:8888:\n%s", orig)
	}
	defaultConfig = free
	t.Cleanup(func() { defaultConfig = orig })
	t.Chdir(t.TempDir()) // no ./netd.yaml

	var log testutil.SyncBuffer
	d, err := New(Options{Source: FindSource(""), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 1)
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = d.run(ctx, signals, false)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("run did not return")
		}
	})

	listening := waitLog(t, &log, "listening")[0]
	if !strings.Contains(listening, `config="embedded default"`) {
		t.Errorf("the listening line does not name the embedded default: %s", listening)
	}
	c := dialListener(t, d, "echo")
	testutil.RoundTrip(t, c, "before\n")

	signals <- syscall.SIGHUP
	after := waitLog(t, &log, "SIGHUP")
	if len(after) != 1 {
		t.Errorf("SIGHUP logged %d lines, want 1:\n%s", len(after), strings.Join(after, "\n"))
	}
	if !strings.Contains(after[0], "[WARN]") || !strings.Contains(after[0], "cannot reload") || !strings.Contains(after[0], "no file to re-read") {
		t.Errorf("the SIGHUP line does not say why it cannot reload: %s", after[0])
	}
	if got := series(t, d)["netd_reloads_total{result=failed}"]; got != 1 {
		t.Errorf("netd_reloads_total{result=failed} = %v, want 1", got)
	}
	testutil.RoundTrip(t, c, "after SIGHUP\n")
	c.Close()

	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Fatalf("run: %v", runErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context was done")
	}
	waitLog(t, &log, "stopped")
}
