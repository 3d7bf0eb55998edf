package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func runCmd(args ...string) (stdout, stderr string, err error) {
	cmd := NewCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestCommand(t *testing.T) {
	addr := startServer(t, "tcp", good)
	out, errOut, err := runCmd("-c", "3", "-s", "100", "-n", "4", "-d", "300ms", "--random", "--fragment",
		"--half-close", "1", "--reconnect", "--cycle-lines", "20", "--seed", "9", "--quiet", "--json", addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr with --quiet: %q", errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	o := r.Options
	if o.Conns != 3 || o.LineSize != 100 || o.InFlight != 4 || !o.RandomLines || !o.Fragment ||
		o.HalfClose != 1 || !o.Reconnect || o.CycleLines != 20 || o.Seed != 9 || o.Address != addr {
		t.Errorf("flags not applied: %+v", o)
	}
	if r.Lines == 0 || r.HalfCloses == 0 || r.Mismatches != 0 {
		t.Errorf("lines %d, half-closes %d, mismatches %d", r.Lines, r.HalfCloses, r.Mismatches)
	}

	// Text report on stdout, progress on stderr.
	out, errOut, err = runCmd("-c", "2", "-d", "1100ms", addr)
	if err != nil || !strings.Contains(out, "lines/s") || !strings.Contains(errOut, "lines/s") {
		t.Errorf("%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}

	// A failed run prints its report and fails.
	bad := startServer(t, "tcp", corrupt)
	out, errOut, err = runCmd("-c", "1", "-d", "200ms", "-q", bad)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(out, "mismatches   ") || !strings.Contains(errOut, "mismatch at") {
		t.Errorf("%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}

	// Nothing listens: nothing runs, nothing is printed.
	out, _, err = runCmd("--timeout", "200ms", "-q", closedAddr(t))
	if !errors.Is(err, ErrNotListening) || out != "" {
		t.Errorf("nothing listening: %v, stdout %q", err, out)
	}

	// Bad usage: nothing runs, nothing is printed.
	for _, args := range [][]string{
		{},
		{addr, addr},
		{"--half-close", "2", addr},
		{"-c", "-1", addr},
		{"ftp://x:1"},
	} {
		out, _, err := runCmd(args...)
		if err == nil || out != "" {
			t.Errorf("%q: %v, stdout %q", args, err, out)
		}
	}
}
