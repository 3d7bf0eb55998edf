package daemon

import (
	_ "embed"
	"os"

	"github.com/netd/netd/internal/config"
)

//go:embed default.yaml
var defaultConfig []byte

// defaultConfigName stands for the embedded config in messages.
const defaultConfigName = "<embedded default>.yaml"

// Source says where the config comes from: the file the user named,
// ./netd.yaml, or the embedded default.
type Source struct {
	// Path is the file as the user gave it; "" is the embedded default.
	Path string
}

// FindSource is the config `netd serve` runs: the file given with -c
// (flag), else netd.yaml in the working directory, else the embedded
// default.
func FindSource(flag string) Source {
	if flag != "" {
		return Source{Path: flag}
	}
	if _, err := os.Stat("netd.yaml"); err == nil {
		return Source{Path: "netd.yaml"}
	}
	return Source{}
}

// Embedded reports whether s is the embedded default config.
func (s Source) Embedded() bool { return s.Path == "" }

// Name names the config in messages.
func (s Source) Name() string {
	if s.Embedded() {
		return defaultConfigName
	}
	return s.Path
}

// load reads, decodes, validates and provisions the config.
func (s Source) load(env config.Env) (*config.Config, error) {
	if s.Embedded() {
		return config.ParseEnv(defaultConfigName, defaultConfig, env)
	}
	return config.LoadEnv(s.Path, env)
}
