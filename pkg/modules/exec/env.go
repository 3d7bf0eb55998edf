package exec

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/netd/netd/pkg/modules/api"
)

// DefaultPath is a child's PATH when neither env nor env_keep gives one.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// netdOwn are variables of netd's environment that env_keep may not pass
// on: they describe netd's service manager and sockets (and the upgrade
// library's hand-over), and a child that believed them could talk to
// systemd, or to netd's successor, as if it were netd.
var netdOwn = map[string]bool{
	"LISTEN_FDS": true, "LISTEN_PID": true, "LISTEN_FDNAMES": true,
	"NOTIFY_SOCKET": true, "WATCHDOG_PID": true, "WATCHDOG_USEC": true,
}

// inetdVars are the variables netd sets for each connection; they win
// over env and env_keep.
var inetdVars = map[string]bool{
	"PROTO": true, "TCPREMOTEIP": true, "TCPREMOTEPORT": true,
	"TCPLOCALIP": true, "TCPLOCALPORT": true, "UNIXLOCALPATH": true,
}

// baseEnv is the part of a child's environment that is the same for every
// connection: the env_keep variables netd has (lookup), then the env
// option, then PATH when neither gave it. Nothing else of netd's
// environment reaches a child: not its secrets, HOME, or the variables of
// its service manager. The error names the option at fault.
func baseEnv(set map[string]string, keep []string, lookup func(string) (string, bool)) ([]string, string, error) {
	for k := range set {
		if !validName(k) {
			return nil, "env", fmt.Errorf("bad variable name %q", k)
		}
	}
	var env []string
	seen := map[string]bool{}
	for _, k := range keep {
		switch {
		case !validName(k):
			return nil, "env_keep", fmt.Errorf("bad variable name %q", k)
		case netdOwn[k]:
			return nil, "env_keep", fmt.Errorf("%s is netd's own (its service manager's); a child may not have it", k)
		case seen[k] || inetdVars[k]:
			continue
		}
		seen[k] = true
		if _, over := set[k]; over {
			continue
		}
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if !inetdVars[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+set[k])
	}
	hasPath := false
	for _, kv := range env {
		hasPath = hasPath || strings.HasPrefix(kv, "PATH=")
	}
	if !hasPath {
		env = append(env, "PATH="+DefaultPath)
	}
	return env, "", nil
}

func validName(k string) bool { return k != "" && !strings.ContainsAny(k, "=\x00") }

// environ is the child's environment: the base, then the peer's address as
// UCSPI's tcpserver gives it.
func (e *Exec) environ(c api.Conn) []string {
	env := make([]string, len(e.env), len(e.env)+5)
	copy(env, e.env)
	if e.unix {
		env = append(env, "PROTO=UNIX")
		if a, ok := c.LocalAddr().(*net.UnixAddr); ok && a != nil && a.Name != "" {
			env = append(env, "UNIXLOCALPATH="+a.Name)
		}
		return env
	}
	env = append(env, "PROTO=TCP")
	if ap, ok := addrPort(c.RemoteAddr()); ok {
		env = append(env, "TCPREMOTEIP="+ap.Addr().String(), "TCPREMOTEPORT="+strconv.Itoa(int(ap.Port())))
	}
	if ap, ok := addrPort(c.LocalAddr()); ok {
		env = append(env, "TCPLOCALIP="+ap.Addr().String(), "TCPLOCALPORT="+strconv.Itoa(int(ap.Port())))
	}
	return env
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return netip.AddrPort{}, false
	}
	ap := t.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}
