package apitest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricAndSeries: Metric reads one series by a subset of its labels;
// Series lists every series under name{labels}, labels sorted.
func TestMetricAndSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netd_x_total", Help: "x"}, []string{"z", "a"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "netd_y", Help: "y"})
	reg.MustRegister(c, g)
	c.WithLabelValues("1", "2").Add(3)
	c.WithLabelValues("4", "5").Inc()
	g.Set(7)
	if v := Metric(t, reg, "netd_x_total", "z", "4"); v != 1 {
		t.Errorf("Metric(z=4) = %v, want 1", v)
	}
	want := map[string]float64{"netd_x_total{a=2,z=1}": 3, "netd_x_total{a=5,z=4}": 1, "netd_y{}": 7}
	got := Series(t, reg)
	if len(got) != len(want) {
		t.Fatalf("Series = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Series[%s] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
