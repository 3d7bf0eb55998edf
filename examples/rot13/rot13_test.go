package rot13_test

import (
	"strings"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"

	"example.com/rot13"
)

func TestRot13(t *testing.T) {
	m := new(rot13.Rot13)
	if err := apitest.Provision(t, m, "tcp", ""); err != nil {
		t.Fatal(err)
	}
	c := apitest.NewConn(m, apitest.WithT(t))
	c.FeedSplit([]byte("Hello, World!\nwor"))
	if got := c.TakeWritten(); string(got) != "Uryyb, Jbeyq!\n" {
		t.Fatalf("got %q", got)
	}
	c.FeedString("ld")
	c.FeedEOF() // the client half-closes: the partial line comes back too
	if got := c.WrittenString(); got != "jbeyq" || !c.Closed() || c.Reason() != api.ReasonClient {
		t.Fatalf("got %q, closed %v, reason %q", got, c.Closed(), c.Reason())
	}
}

func TestTwiceIsIdentity(t *testing.T) {
	for b := 0; b < 256; b++ {
		if got := rot13.Rotate(rot13.Rotate(byte(b))); got != byte(b) {
			t.Fatalf("Rotate(Rotate(%q)) = %q", byte(b), got)
		}
	}
}

func TestLongLine(t *testing.T) {
	m := new(rot13.Rot13)
	if err := apitest.Provision(t, m, "tcp", "max_line_bytes: 8"); err != nil {
		t.Fatal(err)
	}
	c := apitest.NewConn(m, apitest.WithT(t))
	c.FeedString(strings.Repeat("x", 8))
	if !c.Closed() || c.Reason() != rot13.ReasonLineTooLong {
		t.Fatalf("closed %v, reason %q", c.Closed(), c.Reason())
	}
}

func TestOptions(t *testing.T) {
	for yaml, want := range map[string]string{
		"max_line_bytes: 1":  "options.yaml:1:17: option max_line_bytes: max_line_bytes must be between 2 and 1048576, not 1",
		"shift: 13":          `options.yaml:1:1: unknown option "shift"`,
		"max_line_bytes: 64": "",
	} {
		err := apitest.Provision(t, new(rot13.Rot13), "tcp", yaml)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}

func TestRegistered(t *testing.T) {
	if _, ok := api.Lookup("rot13"); !ok {
		t.Fatal("rot13 is not registered")
	}
}
