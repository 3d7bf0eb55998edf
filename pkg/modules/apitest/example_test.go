package apitest_test

import (
	"fmt"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
	"github.com/netd/netd/pkg/modules/echo"
	"github.com/netd/netd/pkg/options"
)

func ExampleConn() {
	m := new(echo.Echo)
	if err := m.Provision(api.Setup{Listener: "echo", Network: "tcp", Options: noOptions()}); err != nil {
		panic(err)
	}
	c := apitest.NewConn(m)
	c.FeedSplit([]byte("hello\nwor"), 3) // two reads: "hel", "lo\nwor"
	fmt.Printf("%q\n", c.TakeWritten())
	c.FeedString("ld")
	c.FeedEOF() // the client half-closes
	fmt.Printf("%q closed=%v reason=%s\n", c.Written(), c.Closed(), c.Reason())
	// Output:
	// "hello\n"
	// "world" closed=true reason=client
}

func ExampleConn_Drain() {
	m := new(echo.Echo)
	_ = m.Provision(api.Setup{Listener: "echo", Network: "tcp", Options: noOptions()})
	c := apitest.NewConn(m, apitest.WithWritable(4)) // the kernel takes 4 bytes
	c.FeedString("slow reader\n")
	fmt.Printf("%q buffered=%d\n", c.Written(), c.Buffered())
	c.Drain(-1) // the client reads everything
	fmt.Printf("%q buffered=%d\n", c.Written(), c.Buffered())
	// Output:
	// "slow" buffered=8
	// "slow reader\n" buffered=0
}

// noOptions is an empty options block, what netd hands a listener that has
// none; a test with a testing.TB gets one from apitest.Options.
func noOptions() api.Options {
	o, err := options.FromYAML(apitest.OptionsFile, nil)
	if err != nil {
		panic(err)
	}
	return o
}
