// Command gnet-echo is a line-echo server on gnet v2, for bench/compare.sh:
// every complete line comes back as it arrived; a partial line waits in
// gnet's inbound buffer for its '\n', as in netd's echo (mode: line).
package main

import (
	"bytes"
	"flag"
	"log"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

type lineEcho struct {
	gnet.BuiltinEventEngine
}

// OnTraffic echoes the complete lines and leaves the partial one. Write
// copies what the kernel does not take, so Discard may follow it.
func (*lineEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	n := bytes.LastIndexByte(buf, '\n') + 1
	if n > 0 {
		_, _ = c.Write(buf[:n])
		_, _ = c.Discard(n)
	}
	return gnet.None
}

func main() {
	addr := flag.String("addr", "tcp://127.0.0.1:9001", "address to listen on (tcp://host:port or unix:///path)")
	loops := flag.Int("loops", 1, "event loops")
	flag.Parse()
	err := gnet.Run(new(lineEcho), *addr,
		gnet.WithMulticore(false),
		gnet.WithNumEventLoop(*loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel),
	)
	if err != nil {
		log.Fatal(err)
	}
}
