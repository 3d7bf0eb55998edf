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
}

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
