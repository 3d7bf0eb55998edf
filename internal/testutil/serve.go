package testutil

import (
	"net"
	"sync"
	"testing"
)

// Serve accepts on ln until t ends, running handle for each connection
// in a goroutine of its own and closing the connection when handle
// returns. At cleanup it closes ln and every open connection and waits
// for all its goroutines, so that none outlives the test.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
