package apitest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/modules/apitest"
)

// greeter is a module with options, to provision.
type greeter struct {
	handler
	opts struct {
		Greeting string        `option:"greeting"`
		Delay    time.Duration `option:"delay"`
	}
	setup api.Setup
}

func (g *greeter) Provision(s api.Setup) error {
	g.setup = s
	g.opts.Greeting = "hello"
	if err := s.Options.Decode(&g.opts); err != nil {
		return err
	}
	if g.opts.Greeting == "" {
		return s.Options.Errorf("greeting", "must not be empty")
	}
	s.Logger.Info("provisioned", "greeting", g.opts.Greeting)
	return nil
}

func TestProvision(t *testing.T) {
	g := &greeter{}
	if err := apitest.Provision(t, g, "tcp", "delay: 5ms"); err != nil {
		t.Fatal(err)
	}
	if g.opts.Greeting != "hello" || g.opts.Delay != 5*time.Millisecond {
		t.Errorf("options = %+v: defaults must survive Decode", g.opts)
	}
	if g.setup.Listener != apitest.DefaultListener || g.setup.Network != "tcp" || g.setup.Logger == nil {
		t.Errorf("Setup = %+v", g.setup)
	}
	if err := apitest.Provision(t, &greeter{}, "tcp", ""); err != nil {
		t.Errorf("no options: %v", err)
	}
}

func TestProvisionErrorsArePositioned(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"greting: hi", "options.yaml:1:1"},
		{"greeting: hi\ndelay: 5", "options.yaml:2:8"},
		{"greeting: \"\"", "options.yaml:1:11"},
		{"greeting: [", "options.yaml:1"},
	}
	for _, tt := range tests {
		err := apitest.Provision(t, &greeter{}, "tcp", tt.yaml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Provision(%q) = %v, want an error at %s", tt.yaml, err, tt.want)
		}
	}
}

func TestLoggerRecords(t *testing.T) {
	log := apitest.NewLogger(t)
	g := &greeter{}
	err := g.Provision(api.Setup{Listener: "x", Network: "udp", Options: apitest.Options(t, "greeting: hi"), Logger: log.Named("sub")})
	if err != nil {
		t.Fatal(err)
	}
	found := log.Find(hclog.Info, "provisioned")
	if len(found) != 1 {
		t.Fatalf("entries:\n%s", log)
	}
	if v, ok := found[0].Arg("greeting"); !ok || v != "hi" {
		t.Errorf("greeting = %v, %v", v, ok)
	}
	if found[0].Name != apitest.DefaultListener+".sub" {
		t.Errorf("Name = %q", found[0].Name)
	}
	if _, ok := found[0].Arg("missing"); ok {
		t.Error("Arg found a key never logged")
	}
}
