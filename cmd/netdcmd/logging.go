package netdcmd

import (
	"fmt"
	"strings"
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
