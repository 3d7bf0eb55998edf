package api_test

import (
	"testing"

	"github.com/netd/netd/pkg/modules/api"
)

// TestStreamBase: StreamBase supplies OnAccept, OnWritable and OnClose, and
// not OnReadable, so that a module embedding it and forgetting OnReadable
// is not a StreamHandler and fails its interface guard.
func TestStreamBase(t *testing.T) {
	var b any = api.StreamBase{}
	if _, ok := b.(api.StreamHandler); ok {
		t.Error("StreamBase alone is a StreamHandler; it must leave OnReadable to the module")
	}
	type rest interface {
		OnAccept(api.Conn)
		OnWritable(api.Conn)
		OnClose(api.Conn, api.Reason, error)
	}
	if _, ok := b.(rest); !ok {
		t.Error("StreamBase lacks OnAccept, OnWritable or OnClose")
	}
	var m any = &struct {
		api.StreamBase
		readable
	}{}
	if _, ok := m.(api.StreamHandler); !ok {
		t.Error("StreamBase with an OnReadable is not a StreamHandler")
	}
}

type readable struct{}

func (readable) OnReadable(api.Conn) {}
