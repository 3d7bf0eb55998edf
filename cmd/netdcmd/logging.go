package netdcmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
)

func checkLevel(s string) error {
	switch strings.ToLower(s) {
	case "trace", "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("log level %q: want trace, debug, info, warn or error", s)
}

func checkFormat(s string) error {
	switch strings.ToLower(s) {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("log format %q: want text or json", s)
}

// newLogger builds the daemon's root logger. Sub-loggers are named where
// things are wired (listener.NAME, loop).
func newLogger(w io.Writer, level, format string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "netd",
		Level:      hclog.LevelFromString(level),
		Output:     w,
		JSONFormat: format == "json",
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
}
