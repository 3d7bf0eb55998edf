package config

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/netd/netd/pkg/address"
)

// Address is a listener's address, parsed by address.Parse: the one parser
// that the loop and the modules use too, so that what validates binds.
type Address = address.Address

// checkHostPort validates the host:port of a tcp or udp address to listen
// on and returns what is wrong with it, or "".
func checkHostPort(network, hostport string) string {
	_, err := address.ResolveListen(network, hostport)
	var e *address.Error
	if errors.As(err, &e) {
		return e.Problem
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// bindKey identifies what a listener binds, so that two listeners that
// would bind the same socket can be reported before either binds: the IP
// as the loop resolves it, so LOCALHOST and 127.0.0.1 collide, and "" for
// an empty host whatever the scheme's family, since tcp:// on every
// interface takes IPv4 as well. It is ""
// for addresses that cannot collide in a way worth checking: port 0, and
// fd (systemd may pass several sockets under one name).
func bindKey(a Address) string {
	switch a.Network() {
	case "unix":
		return "unix " + path.Clean(a.Path)
	case "tcp", "udp":
		if a.Scheme == "fd" {
			return ""
		}
		ap, err := address.ResolveListen(a.Scheme, a.Host)
		if err != nil || ap.Port() == 0 {
			return ""
		}
		host := ap.Addr().String()
		if strings.HasPrefix(a.Host, ":") {
			host = ""
		}
		return fmt.Sprintf("%s %s %d", a.Network(), host, ap.Port())
	}
	return ""
}
