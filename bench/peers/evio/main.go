// Command evio-echo is a line-echo server on evio, for bench/compare.sh:
// every complete line comes back as it arrived; a partial line is kept,
// per connection and only while there is one, until its '\n' arrives, as in
// netd's echo (mode: line).
package main

import (
	"bytes"
	"flag"
	"log"

	"github.com/tidwall/evio"
)

func main() {
	addr := flag.String("addr", "tcp://127.0.0.1:9002", "address to listen on (tcp://host:port or unix:///path)")
	loops := flag.Int("loops", 1, "event loops")
	flag.Parse()

	var events evio.Events
	events.NumLoops = *loops
	events.Opened = func(c evio.Conn) (out []byte, opts evio.Options, action evio.Action) {
		// Data may return slices of the loop's read buffer: evio copies
		// the output before the buffer is read into again.
		opts.ReuseInputBuffer = true
		return
	}
	events.Data = func(c evio.Conn, in []byte) (out []byte, action evio.Action) {
		data := in
		held, _ := c.Context().(*[]byte)
		inHeld := held != nil && len(*held) > 0
		if inHeld {
			*held = append(*held, in...)
			data = *held
		}
		n := bytes.LastIndexByte(data, '\n') + 1
		out = data[:n]
		rest := data[n:]
		switch {
		case len(rest) == 0:
			if held != nil {
				*held = (*held)[:0]
			}
		case held == nil:
			b := append([]byte(nil), rest...)
			c.SetContext(&b)
		case inHeld:
			// out lies in *held, and evio copies it only after Data
			// returns: keep the rest in a new slice.
			*held = append([]byte(nil), rest...)
		default:
			*held = append((*held)[:0], rest...)
		}
		return out, evio.None
	}
	if err := evio.Serve(events, *addr); err != nil {
		log.Fatal(err)
	}
}
