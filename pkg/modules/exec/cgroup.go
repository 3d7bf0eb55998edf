package exec

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A process group is not a fence: a child that calls setsid(2) (every
// daemonizing program does) leaves it, and a kill of the group misses it.
// A cgroup is: nothing a process does takes it out, and cgroup.kill
// (Linux 5.14) kills every process in it at once. So where netd may create
// cgroups (cgroup v2, in its own cgroup, as root or under a delegated
// subtree such as systemd's Delegate=yes), each child is started inside a
// cgroup of its own (clone3's CLONE_INTO_CGROUP: no moment outside it),
// which is killed and removed when the child's session ends. Elsewhere
// netd says so once in its log and falls back to the process group.

// cgroupState is what netd found out about cgroups, once per process.
type cgroupState struct {
	dir string // netd's own cgroup directory; "" when unusable
	why error  // why it is unusable
}

var (
	cgroupOnce  sync.Once
	cgroupFound cgroupState
	cgroupSeq   atomic.Uint64
)

// cgroups returns netd's cgroup v2 directory, if children can get cgroups
// of their own under it. It is found at the first call, which must come
// after netd dropped its privileges: it tries to create one.
func cgroups() cgroupState {
	cgroupOnce.Do(func() {
		dir, err := ownCgroupDir()
		if err == nil {
			err = probeCgroup(dir)
		}
		if err != nil {
			cgroupFound = cgroupState{why: err}
			return
		}
		cgroupFound = cgroupState{dir: dir}
		removeOrphanCgroups(dir)
	})
	return cgroupFound
}

// removeOrphanCgroups kills and removes the child cgroups a netd that no
// longer runs left in dir (one killed with SIGKILL, say), so that neither
// its children's leftovers nor its directories pile up. Those of a netd
// still running (the old process of an upgrade) are its own business.
func removeOrphanCgroups(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		rest, ok := strings.CutPrefix(ent.Name(), "netd-exec-")
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || !ent.IsDir() || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		removeCgroup(filepath.Join(dir, ent.Name()))
	}
}

// ownCgroupDir finds netd's cgroup in the cgroup v2 hierarchy.
func ownCgroupDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	path, found := "", false
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 hierarchy (/proc/self/cgroup has no 0:: line)")
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer mi.Close()
	sc := bufio.NewScanner(mi)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		root, mount := f[3], f[4]
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		return filepath.Join(mount, rel), nil
	}
	return "", errors.New("cgroup v2 is not mounted where netd can see its own cgroup")
}

// probeCgroup checks that a child cgroup can be created, and killed, in
// dir.
func probeCgroup(dir string) error {
	probe := filepath.Join(dir, fmt.Sprintf("netd-exec-%d-probe", os.Getpid()))
	if err := unix.Mkdir(probe, 0o755); err != nil && err != unix.EEXIST {
		return fmt.Errorf("cannot create a cgroup in %s: %w", dir, err)
	}
	_, statErr := os.Stat(filepath.Join(probe, "cgroup.kill"))
	if err := unix.Rmdir(probe); err != nil {
		return fmt.Errorf("cannot remove cgroup %s: %w", probe, err)
	}
	if statErr != nil {
		return fmt.Errorf("no cgroup.kill (Linux 5.14 or later): %w", statErr)
	}
	return nil
}

// newChildCgroup creates a cgroup for one child under dir and opens it for
// CLONE_INTO_CGROUP.
func newChildCgroup(dir string) (path string, fd int, err error) {
	path = filepath.Join(dir, fmt.Sprintf("netd-exec-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := unix.Mkdir(path, 0o755); err != nil {
		return "", -1, fmt.Errorf("create cgroup: %w", err)
	}
	fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Rmdir(path)
		return "", -1, fmt.Errorf("open cgroup: %w", err)
	}
	return path, fd, nil
}

// removeCgroup kills whatever is left in the child cgroup at path and
// removes it. The kill is asynchronous: when the cgroup is still busy
// with its dying processes it reports false, and the caller tries again
// later.
func removeCgroup(path string) bool {
	if unix.Rmdir(path) == nil {
		return true
	}
	if err := os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0); err != nil && errors.Is(err, os.ErrNotExist) {
		return true
	}
	err := unix.Rmdir(path)
	return err == nil || err == unix.ENOENT
}
