package admin

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// provisionTest registers what a module instance would in Provision, as
// config does: through the listener's registerer, under the module and
// listener labels.
func provisionTest(t *testing.T, m *Metrics, module, listener string) (prometheus.Counter, *prometheus.GaugeVec) {
	t.Helper()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"module": module, "listener": listener}, m.ListenerRegisterer(module, listener))
	c, err := api.RegisterMetric(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "netd_test_served_total", Help: "Served."}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := api.RegisterMetric(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netd_test_open", Help: "Open."}, []string{"upstream"}))
	if err != nil {
		t.Fatal(err)
	}
	return c, v
}

// moduleSeries returns every netd_test_* sample as name{labels} = value.
func moduleSeries(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	out := apitest.Series(t, m.Registry())
	for k := range out {
		if !strings.HasPrefix(k, "netd_test_") {
			delete(out, k)
		}
	}
	return out
}

// TestRetainListeners: after a reload, the module series of a listener
// that is gone, or that runs another module now, are unregistered, all of
// them and only theirs; a kept listener's new instance gets its
// predecessor's collectors back and counts on; a listener added again
// under an old name starts from zero.
func TestRetainListeners(t *testing.T) {
	m := NewMetrics(&fakeSource{}, "", "")
	keep, keepOpen := provisionTest(t, m, "proxy", "keep")
	gone, goneOpen := provisionTest(t, m, "proxy", "gone")
	swap, _ := provisionTest(t, m, "proxy", "swap")
	keep.Add(2)
	keepOpen.WithLabelValues("u1").Set(1)
	gone.Add(3)
	goneOpen.WithLabelValues("u1").Set(1)
	swap.Add(4)
	if got := len(moduleSeries(t, m)); got != 5 {
		t.Fatalf("before the reload: %d series, want 5: %v", got, moduleSeries(t, m))
	}

	// The reload: keep stays, gone goes, swap runs echo now.
	keep2, _ := provisionTest(t, m, "proxy", "keep")
	if keep2 != keep {
		t.Fatal("the kept listener's new instance got a new counter, not its predecessor's")
	}
	provisionTest(t, m, "echo", "swap")
	m.RetainListeners([]ListenerID{{Listener: "keep", Module: "proxy"}, {Listener: "swap", Module: "echo"}})
	keep2.Inc()

	want := map[string]float64{
		"netd_test_served_total{listener=keep,module=proxy}":     3,
		"netd_test_open{listener=keep,module=proxy,upstream=u1}": 1,
		"netd_test_served_total{listener=swap,module=echo}":      0,
	}
	got := moduleSeries(t, m)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s still there after the reload", k)
		}
	}

	// Added again later: new collectors, from zero, not the old ones.
	gone2, _ := provisionTest(t, m, "proxy", "gone")
	if gone2 == gone {
		t.Error("a listener added again got the removed one's counter back")
	}
	if v := moduleSeries(t, m)["netd_test_served_total{listener=gone,module=proxy}"]; v != 0 {
		t.Errorf("re-added listener's counter = %v, want 0", v)
	}
}

// TestListenerRegisterer: the registerer hands the Registry's errors
// over unchanged, and forgets what is unregistered through it.
func TestListenerRegisterer(t *testing.T) {
	m := NewMetrics(&fakeSource{}, "", "")
	r := m.ListenerRegisterer("proxy", "a")
	if m.ListenerRegisterer("proxy", "a") != r {
		t.Fatal("the same listener and module got a second registerer")
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "netd_test_served_total", Help: "Served."})
	r.MustRegister(c)
	err := r.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "netd_test_served_total", Help: "Served."}))
	if are, ok := err.(prometheus.AlreadyRegisteredError); !ok || are.ExistingCollector != c {
		t.Fatalf("registering twice: %v (%T), want the AlreadyRegisteredError itself", err, err)
	}
	if !r.Unregister(c) {
		t.Fatal("Unregister: false")
	}
	if n := len(r.(*listenerRegisterer).registered); n != 0 {
		t.Errorf("%d collectors still on the record after Unregister", n)
	}
	if r.Unregister(c) {
		t.Error("Unregister twice: true")
	}
}
