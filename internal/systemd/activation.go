package systemd

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// UnknownName is the name libsystemd's sd_listen_fds_with_names(3) gives
// every passed descriptor when LISTEN_FDNAMES is unset. systemd itself
// always sets LISTEN_FDNAMES: a socket unit without FileDescriptorName=
// names its descriptors after the unit, "netd.socket". A descriptor with
// an empty name in LISTEN_FDNAMES is also named UnknownName.
const UnknownName = "unknown"

// Listeners returns the sockets systemd passed by socket activation, by
// name (the socket unit's FileDescriptorName=, which a config's fd://NAME
// names), each name's in the order the unit lists them. The descriptors
// are marked close-on-exec and LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
// are unset, so that no child process (exec module, upgrade) inherits
// either: call it once, early, before any child starts. With no
// activation (LISTEN_PID unset or another process's) it returns an empty
// map and no error; malformed variables are an error.
func Listeners() (map[string][]*os.File, error) {
	names, err := parseListenEnv(os.Getenv, os.Getpid())
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(v)
	}
	if err != nil {
		return nil, err
	}
	files := make(map[string][]*os.File, len(names))
	for i, name := range names {
		fd := listenFDsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			for _, fs := range files {
				for _, f := range fs {
					_ = f.Close()
				}
			}
			return nil, fmt.Errorf("socket activation: LISTEN_FDS=%d but descriptor %d: %w", len(names), fd, err)
		}
		files[name] = append(files[name], os.NewFile(uintptr(fd), name))
	}
	return files, nil
}

// parseListenEnv reads the activation variables as sd_listen_fds(3) does
// and returns one name per passed descriptor, descriptor 3 first; none when
// the variables are not for the process pid.
func parseListenEnv(getenv func(string) string, pid int) ([]string, error) {
	pidVar := getenv("LISTEN_PID")
	if pidVar == "" {
		return nil, nil
	}
	p, err := strconv.Atoi(pidVar)
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_PID=%q", pidVar)
	}
	if p != pid {
		return nil, nil // meant for another process, e.g. our parent
	}
	fdsVar := getenv("LISTEN_FDS")
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_FDS=%q", fdsVar)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = UnknownName
	}
	if namesVar := getenv("LISTEN_FDNAMES"); namesVar != "" {
		given := strings.Split(namesVar, ":")
		if len(given) != n {
			return nil, fmt.Errorf("socket activation: LISTEN_FDNAMES=%q names %d descriptors, LISTEN_FDS=%d", namesVar, len(given), n)
		}
		for i, name := range given {
			if name != "" {
				names[i] = name
			}
		}
	}
	return names, nil
}
