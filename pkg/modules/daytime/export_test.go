package daytime

import "time"

// SetNow replaces the clock of d, for tests.
func SetNow(d *Daytime, now func() time.Time) { d.now = now }
