package loop

import (
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// connList is an intrusive doubly linked list of connections that share one
// timeout, ordered by their last activity: the head is always the first to
// expire, so touching a connection (move to back) and finding the next
// deadline are both O(1), with no timer per connection.
type connList struct {
	head, tail *conn
	timeout    time.Duration
	// reason and err are what a connection that expires closes with.
	reason api.Reason
	err    error
	// expire, when set, handles an expired connection instead of closing
	// it with reason and err; it must take the connection off the list.
	expire func(c *conn)
}

// pushBack appends c, the most recently active.
func (l *connList) pushBack(c *conn) {
	c.list = l
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

// remove takes c out of the list.
func (l *connList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.list = nil, nil, nil
}

// moveToBack makes c the most recently active.
func (l *connList) moveToBack(c *conn) {
	if l.tail == c {
		return
	}
	l.remove(c)
	l.pushBack(c)
}

// nextDeadline returns when the head expires; zero when the list is empty.
func (l *connList) nextDeadline() time.Time {
	if l.head == nil {
		return time.Time{}
	}
	return l.head.deadline(l.timeout)
}

// setList moves the connection to list (nil: none).
func (c *conn) setList(list *connList) {
	if c.list == list {
		return
	}
	if c.list != nil {
		c.list.remove(c)
	}
	if list != nil {
		c.lastActive = c.loop.now.UnixNano()
		list.pushBack(c)
	}
}

// touch records activity: it restarts the idle timeout, or, while
// closing, the quiet period the linger waits for. Past LingerTimeout a
// closing connection's activity no longer counts, so a peer that reads a
// trickle, or keeps sending, cannot hold the close open for good.
func (c *conn) touch() {
	if c.list == nil {
		return
	}
	now := c.loop.now.UnixNano()
	if c.flags&flagClosing != 0 && now-c.extra.closing.since > int64(c.loop.engine.cfg.LingerTimeout) {
		return
	}
	c.lastActive = now
	c.list.moveToBack(c)
}

// touchOutput records output progress: activity for the idle timeout and
// the linger, not for a drain (see drain).
func (c *conn) touchOutput() {
	if c.list != &c.loop.draining {
		c.touch()
	}
}

// deadline returns when the connection expires in a list with timeout.
func (c *conn) deadline(timeout time.Duration) time.Time {
	return time.Unix(0, c.lastActive+int64(timeout))
}
