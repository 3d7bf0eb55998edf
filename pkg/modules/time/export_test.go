package timeproto

import "time"

// SetNow replaces the clock of m, for tests.
func SetNow(m *Time, now func() time.Time) { m.now = now }
