package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// Warnings says what is valid in c but not safe: one FILE:LINE:COL:
// warning: line each, at the listener. netd validate prints them and
// netd serve logs them at start and on each reload.
func (c *Config) Warnings() []string {
	var out []string
	warn := func(l Listener, format string, args ...any) {
		e := Error{File: c.File, Pos: l.Pos, Msg: fmt.Sprintf("warning: listener %q: ", l.Name) + fmt.Sprintf(format, args...)}
		out = append(out, e.Error())
	}
	for _, l := range c.Listeners {
		if _, set := l.Options.Map()["instances"]; l.Module == "exec" && !set {
			warn(l, "exec without instances: every connection starts a process, with no cap; set instances (0 for no cap, explicitly)")
		}
		if l.Addr.Scheme != "unix" {
			continue
		}
		dir := filepath.Dir(l.Addr.Path)
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode()&0o002 == 0 {
			continue
		}
		if fi.Mode()&os.ModeSticky != 0 {
			warn(l, "socket directory %s is world-writable: another user can take the socket's name first; use a directory only netd may write, such as /run/netd", dir)
		} else {
			warn(l, "socket directory %s is world-writable without the sticky bit: another user can replace netd's socket with their own; use a directory only netd may write, such as /run/netd", dir)
		}
	}
	return out
}
