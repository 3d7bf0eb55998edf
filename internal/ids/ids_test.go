package ids

import (
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// TestParse: an id that is not a plain non-negative number a uid can be
// is an error, never 0 (root).
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"65534", 65534, true},
		{"4294967294", 4294967294, true},
		{"4294967295", -1, false}, // (uint32)(-1): "unchanged" to the kernel
		{"", -1, false},
		{"S-1-5-21-1004", -1, false},
		{"-1", -1, false},
		{"+5", -1, false},
		{" 5", -1, false},
		{"12a", -1, false},
		{"99999999999", -1, false},
	} {
		got, err := Parse(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "not a numeric id") {
			t.Errorf("Parse(%q): unclear error %q", tc.in, err)
		}
	}
}

// FuzzParse: whatever the input, Parse gives either an id that prints
// back as the input, or -1 and an error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "65534", "4294967295", "-1", "+1", "007", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if id != -1 {
				t.Fatalf("Parse(%q) = %d with error %v, want -1", s, id, err)
			}
			return
		}
		if id < 0 || id >= 1<<32-1 {
			t.Fatalf("Parse(%q) = %d: not a uid", s, id)
		}
		if n, _ := strconv.ParseUint(s, 10, 64); n != uint64(id) {
			t.Fatalf("Parse(%q) = %d", s, id)
		}
	})
}

// TestUserGroup: names and ids resolve; a numeric uid the database does
// not know has no primary group; unknown names and ids that do not parse
// are errors naming them, never root.
func TestUserGroup(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Skipf("no uid 0 in the user database: %v", err)
	}
	for _, tc := range []struct {
		in       string
		uid, gid int
		known    bool
		err      string
	}{
		{root.Username, 0, 0, true, ""},
		{"0", 0, 0, true, ""},
		{"4000000", 4000000, -1, false, ""},
		{"no-such-user-netd", -1, -1, false, `unknown user "no-such-user-netd"`},
		{"12x", -1, -1, false, `unknown user "12x"`},
		{"4294967295", -1, -1, false, `unknown user "4294967295"`},
		{"-1", -1, -1, false, `unknown user "-1"`},
	} {
		uid, gid, known, err := User(tc.in)
		if uid != tc.uid || gid != tc.gid || known != tc.known || (err == nil) != (tc.err == "") ||
			err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("User(%q) = %d, %d, %v, %v; want %d, %d, %v, %q", tc.in, uid, gid, known, err, tc.uid, tc.gid, tc.known, tc.err)
		}
	}
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Skipf("no gid 0 in the group database: %v", err)
	}
	for _, tc := range []struct {
		in  string
		gid int
		err string
	}{
		{rootGroup.Name, 0, ""},
		{"4242", 4242, ""},
		{"no-such-group-netd", -1, `unknown group "no-such-group-netd"`},
		{"4294967295", -1, `unknown group "4294967295"`},
	} {
		gid, err := Group(tc.in)
		if gid != tc.gid || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Group(%q) = %d, %v; want %d, %q", tc.in, gid, err, tc.gid, tc.err)
		}
	}
}

// TestOwner: "" keeps the process's own (-1); a bad user or group fails
// the whole owner, naming it.
func TestOwner(t *testing.T) {
	for _, tc := range []struct {
		user, group string
		uid, gid    int
		err         string
	}{
		{"", "", -1, -1, ""},
		{"0", "", 0, -1, ""},
		{"", "4242", -1, 4242, ""},
		{"4000000", "4242", 4000000, 4242, ""},
		{"no-such-user-netd", "0", -1, -1, `unknown user "no-such-user-netd"`},
		{"0", "no-such-group-netd", -1, -1, `unknown group "no-such-group-netd"`},
	} {
		uid, gid, err := Owner(tc.user, tc.group)
		if uid != tc.uid || gid != tc.gid || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Owner(%q, %q) = %d, %d, %v; want %d, %d, %q", tc.user, tc.group, uid, gid, err, tc.uid, tc.gid, tc.err)
		}
	}
}

// TestIdentity: without a group the user's primary group, which a uid
// the user database does not know lacks; which names the value at fault.
func TestIdentity(t *testing.T) {
	if _, err := user.LookupId("0"); err != nil {
		t.Skipf("no uid 0 in the user database: %v", err)
	}
	for _, tc := range []struct {
		user, group string
		uid, gid    int
		which, err  string
	}{
		{"0", "", 0, 0, "", ""},
		{"0", "4242", 0, 4242, "", ""},
		{"4000000", "4242", 4000000, 4242, "", ""},
		{"4000000", "", -1, -1, "user", "user 4000000 is not in the user database: give group too"},
		{"no-such-user-netd", "4242", -1, -1, "user", `unknown user "no-such-user-netd"`},
		{"0", "no-such-group-netd", -1, -1, "group", `unknown group "no-such-group-netd"`},
	} {
		uid, gid, which, err := Identity(tc.user, tc.group)
		if uid != tc.uid || gid != tc.gid || which != tc.which || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Identity(%q, %q) = %d, %d, %q, %v; want %d, %d, %q, %q", tc.user, tc.group, uid, gid, which, err, tc.uid, tc.gid, tc.which, tc.err)
		}
	}
}
