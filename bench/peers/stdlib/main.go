// Command stdlib-echo is a line-echo server on Go's standard library with
// one goroutine per connection, for bench/compare.sh: every complete line
// comes back as it arrived; a partial line waits for its '\n', as in netd's
// echo (mode: line). Each connection has a 4 KiB buffer (bufio's default
// size), grown for a longer line up to 64 KiB, netd's default
// max_line_bytes; a longer line closes the connection.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

const (
	bufSize = 4 << 10
	maxLine = 64 << 10
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	held := 0
	for {
		n, err := c.Read(buf[held:])
		if n > 0 {
			data := buf[:held+n]
			k := bytes.LastIndexByte(data, '\n') + 1
			if k > 0 {
				if _, werr := c.Write(data[:k]); werr != nil {
					return
				}
			}
			held = copy(buf, data[k:])
			if held == len(buf) {
				if len(buf) >= maxLine {
					return
				}
				grown := make([]byte, 2*len(buf))
				copy(grown, buf)
				buf = grown
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "tcp://127.0.0.1:9003", "address to listen on (tcp://host:port or unix:///path)")
	flag.Parse()
	network, address, ok := strings.Cut(*addr, "://")
	if !ok {
		network, address = "tcp", *addr
	}
	if network == "unix" {
		_ = os.Remove(address)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			time.Sleep(5 * time.Millisecond) // out of descriptors: do not spin
			continue
		}
		go serve(c)
	}
}
