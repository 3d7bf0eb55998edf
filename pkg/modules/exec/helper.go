package exec

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HelperCommand is the first argument that makes a netd binary the exec
// helper instead of the daemon: "netd exec-helper [flags] -- PATH ARGV...".
//
// Some limits can only be set by the child itself, between fork and exec,
// and Go's SysProcAttr has no field for them: resource limits, no_new_privs,
// clearing ambient capabilities. The alternatives were prlimit(2) on the
// child's pid right after Start (but by then the child already runs the
// program, which may open files or fork before the limit lands) or a C
// trampoline shipped beside netd. The helper is netd itself, re-executed
// through /proc/self/exe (the very binary that runs, even if the file was
// replaced by an upgrade): it sets the limits on itself and execs the
// program, which therefore never runs without them. It costs a second exec
// and a Go start-up per connection, so a child goes through it only when
// one of those settings asks for it.
//
// The helper is dispatched from this package's init, not from a command of
// netd's command line: every binary that links the exec module (netd,
// one with out-of-tree modules, this package's tests) can then run it.
const HelperCommand = "exec-helper"

// helperExe is what a child execs to run the helper.
const helperExe = "/proc/self/exe"

func init() {
	if len(os.Args) > 1 && os.Args[1] == HelperCommand {
		err := Helper(os.Args[2:])
		fmt.Fprintf(os.Stderr, "netd %s: %v\n", HelperCommand, err)
		os.Exit(127)
	}
}

// rlimitResources maps the rlimits option's keys to resources.
var rlimitResources = map[string]int{
	"nofile": unix.RLIMIT_NOFILE, // open descriptors
	"nproc":  unix.RLIMIT_NPROC,  // processes of the child's real uid, all of them
	"as":     unix.RLIMIT_AS,     // address space, bytes
	"cpu":    unix.RLIMIT_CPU,    // CPU seconds; SIGXCPU, then SIGKILL at the hard limit
}

// rlimitNames lists rlimitResources' keys, for messages.
func rlimitNames() string {
	names := make([]string, 0, len(rlimitResources))
	for k := range rlimitResources {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// helperSettings is what the helper does before it execs the program.
type helperSettings struct {
	rlimits      map[string]uint64
	noNewPrivs   bool
	clearAmbient bool
}

func (h helperSettings) needed() bool {
	return len(h.rlimits) > 0 || h.noNewPrivs || h.clearAmbient
}

// args are the helper's arguments up to and including "--".
func (h helperSettings) args() []string {
	out := []string{HelperCommand}
	keys := make([]string, 0, len(h.rlimits))
	for k := range h.rlimits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "-rlimit", k+"="+strconv.FormatUint(h.rlimits[k], 10))
	}
	if h.noNewPrivs {
		out = append(out, "-no-new-privs")
	}
	if h.clearAmbient {
		out = append(out, "-clear-ambient")
	}
	return append(out, "--")
}

// parseHelperArgs is args' inverse: the settings, the program's path and
// its argv.
func parseHelperArgs(args []string) (h helperSettings, path string, argv []string, err error) {
	h.rlimits = map[string]uint64{}
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch a {
		case "--":
			if len(args) < 2 {
				return h, "", nil, errors.New("want PATH and ARGV0 after --")
			}
			return h, args[0], args[1:], nil
		case "-no-new-privs":
			h.noNewPrivs = true
		case "-clear-ambient":
			h.clearAmbient = true
		case "-rlimit":
			if len(args) == 0 {
				return h, "", nil, errors.New("-rlimit wants NAME=VALUE")
			}
			k, v, _ := strings.Cut(args[0], "=")
			args = args[1:]
			n, perr := strconv.ParseUint(v, 10, 64)
			if _, ok := rlimitResources[k]; !ok || perr != nil {
				return h, "", nil, fmt.Errorf("bad -rlimit %s=%s", k, v)
			}
			h.rlimits[k] = n
		default:
			return h, "", nil, fmt.Errorf("unknown argument %q", a)
		}
	}
	return h, "", nil, errors.New("no -- PATH ARGV0")
}

// Helper is the exec helper's main: it applies the settings that args
// (as HelperSettings.args writes them) give to its own process, then
// execs the program with its environment. It returns only on failure.
func Helper(args []string) error {
	h, path, argv, err := parseHelperArgs(args)
	if err != nil {
		return err
	}
	// The arguments of execve are ready before any limit is set: under a
	// low address-space limit, even a small allocation could fail.
	argv0, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		return err
	}
	// Capabilities and no_new_privs belong to a thread: the one that
	// execs must be the one that set them.
	runtime.LockOSThread()
	for k, v := range h.rlimits {
		if err := unix.Prlimit(0, rlimitResources[k], &unix.Rlimit{Cur: v, Max: v}, nil); err != nil {
			return fmt.Errorf("rlimit %s=%d: %w", k, v, err)
		}
	}
	if h.clearAmbient {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
			return fmt.Errorf("clear ambient capabilities: %w", err)
		}
	}
	if h.noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	// A raw execve: Go's syscall.Exec would put back the soft descriptor
	// limit Go found at start-up.
	_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE,
		uintptr(unsafe.Pointer(argv0)), uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	return fmt.Errorf("exec %s: %w", path, errno)
}

// hasAmbientCaps reports whether netd's own thread has ambient
// capabilities, which a child would inherit across exec.
func hasAmbientCaps() bool {
	f, err := os.Open("/proc/thread-self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapAmb:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n != 0
		}
	}
	return false
}
