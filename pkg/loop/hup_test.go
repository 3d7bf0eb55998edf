package loop

import (
	"testing"
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// slowConsumer takes nothing on its first delivery and pauses, then
// resumes from another goroutine later: the module of a proxy whose other
// side is slow.
type slowConsumer struct {
	lineEcho
	got     chan []byte
	paused  bool
	resumed bool // set on the loop by the resume task
}

func (m *slowConsumer) OnReadable(c api.Conn) {
	if !m.paused {
		m.paused = true
		c.PauseReading()
		loop := c.Loop()
		go func() {
			time.Sleep(200 * time.Millisecond)
			_ = loop.Submit(func() {
				m.resumed = true
				c.ResumeReading()
			})
		}()
		return
	}
	if !m.resumed {
		return // still waiting on its other side: keeps the input
	}
	in := c.Inbound()
	if len(in) > 0 {
		m.got <- append([]byte(nil), in...)
		c.Consume(len(in))
	}
}

// TestHangUpKeepsUnconsumedInput: a unix peer that writes and closes at
// once hangs up; what the paused module had not consumed yet must still
// reach it when it resumes.
func TestHangUpKeepsUnconsumedInput(t *testing.T) {
	m := &slowConsumer{got: make(chan []byte, 16)}
	_, l := startEngine(t, Config{Loops: 1}, ListenerSpec{Name: "t", Network: "unix", Address: unixPath(t), Module: m})
	c := dial(t, l)
	want := "every byte of this must arrive\n"
	if _, err := c.Write([]byte(want)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var got []byte
	timeout := time.After(5 * time.Second)
	for string(got) != want {
		select {
		case b := <-m.got:
			got = append(got, b...)
		case <-timeout:
			t.Fatalf("module got %q, want %q", got, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.ActiveConnections() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := l.ActiveConnections(); n != 0 {
		t.Fatalf("%d connections left open after the module consumed everything", n)
	}
}
