package apitest_test

import (
	"fmt"
	"time"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// relay forwards what its client sends to an upstream it dials.
type relay struct {
	api.StreamBase // OnWritable, OnClose: nothing to do
	up             api.Conn
}

func (r *relay) OnAccept(c api.Conn) {
	r.up, _ = c.Loop().Dial("tcp", "127.0.0.1:6379", 5*time.Second, &upstreamSide{})
}
func (r *relay) OnReadable(c api.Conn) {
	_, _ = r.up.Write(c.Inbound()) // queues until the upstream connects
	c.Consume(len(c.Inbound()))
}

// upstreamSide drops what the upstream answers.
type upstreamSide struct{ api.StreamBase }

func (upstreamSide) OnReadable(c api.Conn) { c.Consume(len(c.Inbound())) }

func ExampleLoop_Dial() {
	l := apitest.NewLoop()
	client := apitest.NewConn(&relay{}, apitest.WithLoop(l)) // OnAccept dials
	up := l.Dials()[0]
	fmt.Println(up.Network, up.Address, up.Connecting())
	client.FeedString("PING\r\n")
	fmt.Printf("before Connect: written %q, queued %d\n", up.Written(), up.Buffered())
	up.Connect()
	fmt.Printf("after Connect: written %q\n", up.Written())
	// Output:
	// tcp 127.0.0.1:6379 true
	// before Connect: written "", queued 6
	// after Connect: written "PING\r\n"
}
