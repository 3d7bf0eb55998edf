// Command stdlib-echo is a line-echo server on Go's standard library with
// one goroutine per connection, for bench/compare.sh: every complete line
// comes back as it arrived; a partial line waits for its '\n', as in netd's
// echo (mode: line). Each connection has a 4 KiB buffer (bufio's default
// size), grown for a longer line up to 64 KiB, netd's default
// max_line_bytes; a longer line closes the connection.
//
// With -cert and -key it serves TLS (crypto/tls, session tickets on as by
// default), the baseline of netd's TLS figures in docs/BENCHMARKS.md, for
// bench/tls-compare.sh.
package main

import (
	"bytes"
	"crypto/tls"
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
	certFile := flag.String("cert", "", "PEM certificate: serve TLS (with -key)")
	keyFile := flag.String("key", "", "PEM private key")
	handshakeTimeout := flag.Duration("handshake-timeout", 10*time.Second, "with TLS, close a client whose handshake is not done by then (netd's default)")
	flag.Parse()
	var cfg *tls.Config
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
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
		if cfg == nil {
			go serve(c)
			continue
		}
		go func() {
			tc := tls.Server(c, cfg)
			_ = c.SetDeadline(time.Now().Add(*handshakeTimeout))
			if err := tc.Handshake(); err != nil {
				c.Close()
				return
			}
			_ = c.SetDeadline(time.Time{})
			serve(tc)
		}()
	}
}
