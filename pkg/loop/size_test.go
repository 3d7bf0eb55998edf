package loop

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps a connection in the 128-byte size class: every idle
// connection costs what a conn costs. A field that grows it belongs behind
// one of its pointers (connExtra, in, out) unless every connection needs it.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	got := unsafe.Sizeof(conn{})
	t.Logf("conn is %d bytes", got)
	if got > 128 {
		t.Errorf("conn is %d bytes, want at most 128", got)
	}
}
