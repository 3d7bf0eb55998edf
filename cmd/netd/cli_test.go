package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netd/netd/internal/testutil"
)

// TestCompletion: `netd completion SHELL` prints a script that hands
// completion to the binary (`netd __complete ...`), which completes
// netd's own commands; an unknown shell is bad usage.
func TestCompletion(t *testing.T) {
	shells := []struct {
		shell, registers string
	}{
		{"bash", "complete -o default -F __start_netd netd"},
		{"zsh", "compdef _netd netd"},
		{"fish", "complete -c netd "},
		{"powershell", "Register-ArgumentCompleter -CommandName 'netd'"},
	}
	for _, tc := range shells {
		t.Run(tc.shell, func(t *testing.T) {
			r := testutil.RunNetd(t, nil, "completion", tc.shell)
			if r.Code != 0 {
				t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
			}
			if !strings.Contains(r.Stdout, tc.registers) || !strings.Contains(r.Stdout, "__complete") {
				t.Fatalf("the script neither registers netd (%q) nor calls netd __complete:\n%.400s", tc.registers, r.Stdout)
			}
			if tc.shell != "bash" {
				return
			}
			bash, err := exec.LookPath("bash")
			if err != nil {
				t.Log("no bash here: the script's syntax is not checked")
				return
			}
			script := filepath.Join(t.TempDir(), "netd.bash")
			if err := os.WriteFile(script, []byte(r.Stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, out)
			}
		})
	}
	t.Run("the binary completes", func(t *testing.T) {
		r := testutil.RunNetd(t, nil, "__complete", "ser")
		if r.Code != 0 || !strings.Contains(r.Stdout, "serve\t") || strings.Contains(r.Stdout, "validate") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("unknown shell", func(t *testing.T) {
		if r := testutil.RunNetd(t, nil, "completion", "nosuch"); r.Code != 2 || !strings.Contains(r.Stderr, "nosuch") {
			t.Fatalf("exit %d, want 2; stderr %q", r.Code, r.Stderr)
		}
	})
}

// TestListeningNamesConfig: the listening line names the config in force,
// as the user gave it, or ./netd.yaml when serve found it in its working
// directory. (The embedded default binds the fixed port 8888; its line is
// tested in internal/daemon.)
func TestListeningNamesConfig(t *testing.T) {
	const cfg = "listeners:\n  - name: e\n    address: tcp://127.0.0.1:0\n    module: echo\n"
	given := testutil.WriteConfig(t, "given.yaml", cfg)
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "netd.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir string
		args      []string
		want      string
	}{
		{"flag", "", []string{"-c", given}, "config=" + given},
		{"flag json", "", []string{"-c", given, "--log-format", "json"}, `"config":"` + given + `"`},
		{"working directory", local, nil, "config=./netd.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.StartDaemonIn(t, tc.dir, nil, tc.args...)
			testutil.RoundTrip(t, d.Dial("e"), "served\n")
			var line string
			for _, l := range strings.Split(d.Log(), "\n") {
				if strings.Contains(l, "listening") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Fatalf("the listening line does not have %s: %s", tc.want, line)
			}
		})
	}
}
