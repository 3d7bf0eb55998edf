package daemon

import (
	_ "embed"
	"errors"
	"os"

	"github.com/netd/netd/internal/config"
)

//go:embed default.yaml
var defaultConfig []byte

// defaultConfigFile is the embedded config's file name for the parser,
// whose extension picks the format.
const defaultConfigFile = "<embedded default>.yaml"

// errNoFile is why the embedded default cannot be reloaded.
var errNoFile = errors.New("netd runs its embedded default config, which has no file to re-read; start it with -c FILE to reload")

// localConfig is the config serve picks up from the working directory,
// spelled as messages name it.
const localConfig = "./netd.yaml"

// Source says where the config comes from: the file the user named,
// ./netd.yaml, or the embedded default.
type Source struct {
	// Path is the file as the user gave it; "" is the embedded default.
	Path string
}

// FindSource is the config `netd serve` runs: the file given with -c
// (flag), else ./netd.yaml in the working directory, else the embedded
// default.
func FindSource(flag string) Source {
	if flag != "" {
		return Source{Path: flag}
	}
	if _, err := os.Stat(localConfig); err == nil {
		return Source{Path: localConfig}
	}
	return Source{}
}

// Embedded reports whether s is the embedded default config.
func (s Source) Embedded() bool { return s.Path == "" }

// Name names the config in messages: the path as the user gave it,
// ./netd.yaml, or "embedded default".
func (s Source) Name() string {
	if s.Embedded() {
		return "embedded default"
	}
	return s.Path
}

// load reads, decodes, validates and provisions the config.
func (s Source) load(env config.Env) (*config.Config, error) {
	if s.Embedded() {
		return config.ParseEnv(defaultConfigFile, defaultConfig, env)
	}
	return config.LoadEnv(s.Path, env)
}
