package apitest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/options"
)

// OptionsFile is the file name that option errors from Options and
// Provision are positioned in.
const OptionsFile = "options.yaml"

// Options parses yamlOptions, the body of a listener's options block in
// YAML, with the decoder netd's config uses (pkg/options), so that Decode
// and Errorf behave as in the daemon. A YAML syntax error is a mistake in the test and fails it.
func Options(tb testing.TB, yamlOptions string) api.Options {
	tb.Helper()
	o, err := options.FromYAML(OptionsFile, []byte(yamlOptions))
	if err != nil {
		tb.Fatalf("apitest: options: %v", err)
	}
	return o
}

// Provision provisions m as netd does for a listener named DefaultListener
// on network ("tcp", "udp" or "unix") whose options block is yamlOptions,
// with a Logger writing to tb and a registry of its own for Metrics (see
// NewSetup to read it). It returns Provision's error, so that a test can
// check that a bad option is refused, with its position.
func Provision(tb testing.TB, m api.Module, network, yamlOptions string) error {
	tb.Helper()
	o, err := options.FromYAML(OptionsFile, []byte(yamlOptions))
	if err != nil {
		return err
	}
	return m.Provision(api.Setup{
		Listener: DefaultListener,
		Network:  network,
		Options:  o,
		Logger:   NewLogger(tb),
		Metrics:  prometheus.NewRegistry(),
	})
}
