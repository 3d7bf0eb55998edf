package api

// Bounds of a stream connection where the listener sets none. They are
// part of the contract because a module meets them: the loop enforces
// them, the config checks low_watermark against the default high one, and
// apitest's fakes impose the same on a module under test.
const (
	// DefaultHighWatermark is the queued output, in bytes, above which the
	// loop stops reading a connection.
	DefaultHighWatermark = 1 << 20
	// DefaultMaxInput is the unconsumed input, in bytes, above which the
	// loop aborts a connection (ReasonError).
	DefaultMaxInput = 4 << 20
)

// DefaultLowWatermark returns the low watermark that goes with high when
// none is set: a quarter of it, so that a paused connection resumes with
// room to spare rather than pausing again at once.
func DefaultLowWatermark(high int) int { return high / 4 }
