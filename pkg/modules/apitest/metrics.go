package apitest

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/netd/netd/pkg/modules/api"
)

// NewSetup returns the Setup netd gives an instance of a listener named
// DefaultListener on network ("tcp", "udp" or "unix") whose options block
// is yamlOptions, with a Logger writing to tb and a registry of its own
// behind Metrics, which it returns so that a test can read the instance's
// metrics with Metric. A YAML syntax error fails the test.
func NewSetup(tb testing.TB, network, yamlOptions string) (api.Setup, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	return api.Setup{
		Listener: DefaultListener,
		Network:  network,
		Options:  Options(tb, yamlOptions),
		Logger:   NewLogger(tb),
		Metrics:  reg,
	}, reg
}

// Metric returns the value of the counter or gauge name whose labels
// include labelPairs (name, value, name, value, ...), as gathered from g.
// A missing series fails the test, so that a metric that is never
// registered cannot pass for a zero.
func Metric(tb testing.TB, g prometheus.Gatherer, name string, labelPairs ...string) float64 {
	tb.Helper()
	if len(labelPairs)%2 != 0 {
		tb.Fatalf("apitest: Metric %s: odd number of label arguments", name)
	}
	fams, err := g.Gather()
	if err != nil {
		tb.Fatalf("apitest: gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labelPairs); i += 2 {
				if have[labelPairs[i]] != labelPairs[i+1] {
					continue series
				}
			}
			return value(m)
		}
	}
	tb.Fatalf("apitest: no series %s%v", name, labelPairs)
	return 0
}

// Series returns every series gathered from g, keyed
// name{label=value,...} with the labels sorted by name, for a test that
// must see which series exist (after a reload, say) rather than read one.
func Series(tb testing.TB, g prometheus.Gatherer) map[string]float64 {
	tb.Helper()
	fams, err := g.Gather()
	if err != nil {
		tb.Fatalf("apitest: gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(labels)
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = value(m)
		}
	}
	return out
}

// value is a counter's or gauge's value, or a histogram's sample count.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
