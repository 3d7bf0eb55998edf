// Command tlsstdlib-echo is a TLS line-echo server on Go's standard library
// (crypto/tls) with one goroutine per connection, the baseline of netd's
// TLS figures in docs/BENCHMARKS.md: every complete line comes back as it
// arrived, a partial line waits for its '\n', as in netd's echo (mode:
// line). Each connection has a 4 KiB buffer, grown for a longer line up to
// 64 KiB; a longer line closes the connection. Session tickets are on, as
// crypto/tls has them by default.
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"log"
	"net"
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
	addr := flag.String("addr", "127.0.0.1:9443", "host:port to listen on")
	certFile := flag.String("cert", "", "PEM certificate")
	keyFile := flag.String("key", "", "PEM private key")
	handshakeTimeout := flag.Duration("handshake-timeout", 10*time.Second, "close a client whose handshake is not done by then (netd's default)")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", *addr)
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
