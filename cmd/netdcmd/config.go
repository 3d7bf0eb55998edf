package netdcmd

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/netd/netd/internal/config"
)

//go:embed default.yaml
var defaultConfig []byte

// defaultConfigName stands for the embedded config in messages.
const defaultConfigName = "<embedded default>.yaml"

// configSource says where the config comes from: the file the user named,
// ./netd.yaml, or the embedded default.
type configSource struct {
	path     string // as the user gave it; "" for the embedded default
	embedded bool
}

func resolveConfig(flag string) configSource {
	if flag != "" {
		return configSource{path: flag}
	}
	if _, err := os.Stat("netd.yaml"); err == nil {
		return configSource{path: "netd.yaml"}
	}
	return configSource{embedded: true}
}

func (s configSource) name() string {
	if s.embedded {
		return defaultConfigName
	}
	return s.path
}

// load reads, decodes, validates and provisions the config.
func (s configSource) load(env config.Env) (*config.Config, error) {
	if s.embedded {
		return config.ParseEnv(defaultConfigName, defaultConfig, env)
	}
	return config.LoadEnv(s.path, env)
}

// printConfigError writes a config error as one line per problem and
// returns an error that tells Run it has been reported.
func printConfigError(w io.Writer, err error) error {
	var errs config.Errors
	var one *config.Error
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
	case errors.As(err, &one):
		fmt.Fprintln(w, one.Error())
	default:
		fmt.Fprintln(w, "netd: "+err.Error())
	}
	return reportedError{err}
}
