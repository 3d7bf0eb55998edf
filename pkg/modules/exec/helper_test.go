package exec

import (
	"reflect"
	"strings"
	"testing"
)

// TestHelperArgs: what Provision writes, the helper reads back.
func TestHelperArgs(t *testing.T) {
	h := helperSettings{rlimits: map[string]uint64{"nofile": 64, "cpu": 1}, noNewPrivs: true, clearAmbient: true}
	args := append(h.args(), "/bin/sh", "sh", "-c", "--")
	if args[0] != HelperCommand {
		t.Fatalf("args %q", args)
	}
	got, path, argv, err := parseHelperArgs(args[1:])
	if err != nil || !reflect.DeepEqual(got, h) || path != "/bin/sh" || !reflect.DeepEqual(argv, []string{"sh", "-c", "--"}) {
		t.Fatalf("parse(%q) = %+v %q %q %v", args, got, path, argv, err)
	}
	for _, bad := range [][]string{
		{}, {"--"}, {"--", "/bin/sh"}, {"-rlimit"}, {"-rlimit", "files=1", "--", "a", "a"},
		{"-rlimit", "nofile=-1", "--", "a", "a"}, {"-x", "--", "a", "a"},
	} {
		if _, _, _, err := parseHelperArgs(bad); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}

func FuzzHelperArgs(f *testing.F) {
	f.Add("-rlimit\x00nofile=64\x00-no-new-privs\x00--\x00/bin/sh\x00sh")
	f.Add("-rlimit\x00as=\x00--")
	f.Fuzz(func(t *testing.T, joined string) {
		h, path, argv, err := parseHelperArgs(strings.Split(joined, "\x00"))
		if err != nil {
			return
		}
		// What parsed writes back to the same settings.
		again, path2, argv2, err := parseHelperArgs(append(append(h.args()[1:], path), argv...))
		if err != nil || !reflect.DeepEqual(again, h) || path2 != path || !reflect.DeepEqual(argv2, argv) {
			t.Fatalf("%q: round trip %+v %q %q %v, want %+v %q %q", joined, again, path2, argv2, err, h, path, argv)
		}
	})
}
