package loop

import (
	"testing"

	"github.com/netd/netd/internal/config"
)

// TestConfigKnowsTheDefaultWatermark: the config checks low_watermark
// against the default high watermark without importing the loop.
func TestConfigKnowsTheDefaultWatermark(t *testing.T) {
	if config.DefaultHighWatermark != DefaultHighWatermark {
		t.Errorf("config.DefaultHighWatermark = %d, loop.DefaultHighWatermark = %d", config.DefaultHighWatermark, DefaultHighWatermark)
	}
}
