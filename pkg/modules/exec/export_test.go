package exec

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/netd/netd/pkg/modules/internal/relay"
)

// HighWater is the bound past which one side stops being read.
const HighWater = relay.HighWater

// Live returns the children started and not yet reaped. Any goroutine.
func (e *Exec) Live() int64 { return e.live.Load() }

// SpawnStats returns how many children were started and the mean time
// starting one took on the loop, from the netd_exec_start_seconds
// histogram. Any goroutine.
func (e *Exec) SpawnStats() (n uint64, mean time.Duration) {
	var m dto.Metric
	if err := e.metrics.startSeconds.Write(&m); err != nil || m.GetHistogram().GetSampleCount() == 0 {
		return 0, 0
	}
	h := m.GetHistogram()
	n = h.GetSampleCount()
	return n, time.Duration(h.GetSampleSum() / float64(n) * float64(time.Second))
}

// SetKillGrace sets the grace between SIGTERM and SIGKILL for the rest of
// t, and restores it when t ends. Set it before any child is started.
func SetKillGrace(t testing.TB, d time.Duration) {
	old := killGrace
	killGrace = d
	t.Cleanup(func() { killGrace = old })
}

// DisableCgroups makes e fall back to process groups even where children
// could get cgroups of their own. Call it before the first child starts.
func DisableCgroups(e *Exec) { e.noCgroups = true }

// Cgroups returns the cgroup directory children of e get cgroups under,
// "" when they cannot. It decides it at the first call.
func Cgroups(e *Exec) string { return e.cgroups() }

// CgroupsWhy says why children cannot get cgroups of their own here.
func CgroupsWhy() error { return cgroups().why }

// Counter returns e's counter named name (one of the Metric names that is
// a counter).
func (e *Exec) Counter(name string) interface{ Write(*dto.Metric) error } {
	switch name {
	case MetricStderrDropped:
		return e.metrics.stderrDropped
	case MetricStarted:
		return e.metrics.started
	}
	panic("no counter " + name)
}

// CgroupsDir returns netd's cgroup directory, "" when children cannot get
// cgroups of their own.
func CgroupsDir() string { return cgroups().dir }

// RemoveOrphanCgroups is removeOrphanCgroups.
var RemoveOrphanCgroups = removeOrphanCgroups
