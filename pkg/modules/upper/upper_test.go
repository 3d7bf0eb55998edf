package upper_test

import (
	"strings"
	"testing"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/upper"
)

func TestUpper(t *testing.T) {
	tests := []struct {
		name   string
		reads  []string
		eof    bool
		want   string
		reason api.Reason
	}{
		{name: "a line", reads: []string{"Hello, world!\n"}, want: "HELLO, WORLD!\n"},
		{name: "split across reads", reads: []string{"ab", "c\nd", "ef\n"}, want: "ABC\nDEF\n"},
		{name: "partial line waits", reads: []string{"done\nnot yet"}, want: "DONE\n"},
		{name: "non-ASCII untouched", reads: []string{"é\xff\x00z\r\n"}, want: "é\xff\x00Z\r\n"},
		{name: "half-close sends the rest", reads: []string{"bye"}, eof: true, want: "BYE", reason: api.ReasonClient},
		{name: "endless line", reads: []string{"ok\n", strings.Repeat("x", 64<<10)}, want: "OK\n", reason: upper.ReasonLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(upper.Upper)
			if err := apitest.Provision(t, m, "tcp", ""); err != nil {
				t.Fatal(err)
			}
			c := apitest.NewConn(m, apitest.WithT(t))
			for _, r := range tt.reads {
				c.FeedString(r)
			}
			if tt.eof {
				c.FeedEOF()
			}
			if got := c.WrittenString(); got != tt.want {
				t.Errorf("client read %q, want %q", got, tt.want)
			}
			if c.Reason() != tt.reason {
				t.Errorf("reason %q, want %q", c.Reason(), tt.reason)
			}
		})
	}
}

func TestUpperHasNoOptions(t *testing.T) {
	err := apitest.Provision(t, new(upper.Upper), "tcp", "mode: loud")
	if err == nil || !strings.Contains(err.Error(), `options.yaml:1:1: unknown option "mode"`) {
		t.Errorf("Provision = %v, want an unknown option error", err)
	}
}

func TestUpperRegistered(t *testing.T) {
	if info, ok := api.Lookup("upper"); !ok || info.Description == "" {
		t.Errorf("Lookup(upper) = %+v, %v", info, ok)
	}
}
