package config

import (
	"errors"
	"io"
	"testing"
)

// TestErrorf: an options block from a config file positions Errorf in that
// file and names the listener and module whose option it is, whether the
// listener has an options block or not.
func TestErrorf(t *testing.T) {
	c, err := Parse("netd.yaml", []byte(`listeners:
  - name: echo
    address: tcp://:1
    module: test-echo
    options:
      mode: raw
  - name: bare
    address: tcp://:2
    module: test-echo
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Listeners[0].Options
	cause := io.ErrUnexpectedEOF
	err = o.Errorf("mode", "cannot use %q: %w", "raw", cause)
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{Line: 6, Column: 13}) || e.File != "netd.yaml" {
		t.Fatalf("Errorf(mode) = %#v", err)
	}
	if want := `netd.yaml:6:13: listener "echo": module test-echo: option mode: cannot use "raw": unexpected EOF`; err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Errorf lost its %%w")
	}
	// Absent key: the options block.
	if err := o.Errorf("upstreams", "is required"); err.Error() != `netd.yaml:5:5: listener "echo": module test-echo: option upstreams: is required` {
		t.Errorf("got %v", err)
	}
	// No options block: the listener.
	if err := c.Listeners[1].Options.Errorf("upstreams", "is required"); err.Error() != `netd.yaml:7:5: listener "bare": module test-echo: option upstreams: is required` {
		t.Errorf("got %v", err)
	}
}
