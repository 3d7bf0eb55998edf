// Package config reads netd's config file, YAML or HCL, into one typed
// Config. Decoding is strict: unknown keys, ill-typed values and bad
// addresses are errors that name the file, line and column, and Load
// reports as many of them as it can find in one pass. Load also builds and
// provisions each listener's module, so that a bad module option is caught
// with the rest, before any socket is bound.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/internal/proxyproto"
	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/options"
)

// DefaultShutdownTimeout is Config.ShutdownTimeout when the file sets none.
const DefaultShutdownTimeout = 10 * time.Second

// DefaultMaxConnections is a listener's max_connections when the file sets
// none: a cap, so that one client cannot take every descriptor of the
// process by opening connections, yet high enough that no sane service
// meets it. max_connections: 0 asks for no cap, explicitly.
const DefaultMaxConnections = 10000

// Config is a checked config file.
type Config struct {
	File            string        // path as the user gave it; used in every error
	Log             Log           // "" fields when absent from the file
	Loops           int           // 0 = one per CPU
	ShutdownTimeout time.Duration // DefaultShutdownTimeout when absent
	DrainDelay      time.Duration // on stop, accepting on with /readyz failing first; 0 = none
	MaxConnections  int           // all listeners together; 0 = unlimited
	User, Group     string        // "" = keep the user and group netd started as
	AccessLog       bool          // the access_log of stream listeners that set none
	Admin           *Admin        // nil when absent
	Listeners       []Listener    // at least one, names unique
}

// Log is the log block. Level is one of trace, debug, info, warn and error;
// Format is text or json; either is "" when the file does not set it, so
// that flags and the environment can take precedence.
type Log struct{ Level, Format string }

// DefaultAdminSocketMode is the permission bits of a unix:// admin socket
// whose block sets no mode: its owner only, since whoever can connect can
// read every metric (and, with Reload, reload).
const DefaultAdminSocketMode os.FileMode = 0o600

// Admin is the admin endpoint block.
type Admin struct {
	Address string  // as written: host:port, or unix:///path
	Addr    Address // Address parsed: Scheme tcp with Host, or unix with Path
	// Mode, User and Group are the unix socket's permission bits and
	// owner, as systemd's SocketMode, SocketUser and SocketGroup: Mode is
	// DefaultAdminSocketMode when absent, "" keeps netd's own user or
	// group. A tcp admin address has none of them.
	Mode        os.FileMode
	User, Group string
	Reload      bool // POST /-/reload reloads; false (the default) refuses it
	Pprof       bool
}

// Listener is one listener block.
type Listener struct {
	Name, Address, Module string
	Addr                  Address       // Address, parsed
	MaxConnections        int           // DefaultMaxConnections when absent; 0 = unlimited
	IdleTimeout           time.Duration // 0 = never
	// SocketMode, SocketUser and SocketGroup are the permissions and owner
	// of a unix listener's socket file (systemd's SocketMode, SocketUser,
	// SocketGroup); only a unix listener may set them. SocketMode 0 is the
	// loop's default (loop.DefaultSocketMode); "" keeps netd's own user or
	// group. A user or group is a name or a numeric id.
	SocketMode              os.FileMode
	SocketUser, SocketGroup string
	// HighWatermark and LowWatermark bound a connection's queued output
	// in bytes: above the high mark the loop stops reading it until the
	// queue is below the low mark. 0 = the default (api.DefaultHighWatermark,
	// api.DefaultLowWatermark).
	HighWatermark, LowWatermark int
	// ProxyProtocol is the proxy_protocol block; nil when absent.
	ProxyProtocol *proxyproto.Policy
	// Allow and Deny are the access lists; nil when absent (no allow list
	// lets everyone in).
	Allow, Deny *access.Set
	// MaxPerSource, Rate and Burst are the per-source limits
	// (access.Limits); 0 when absent.
	MaxPerSource int
	Rate         float64
	Burst        int
	// AccessLog is the listener's access_log, or the top-level one when it
	// sets none; always false on udp.
	AccessLog bool
	// UDPAmplification is udp_amplification: allow.
	UDPAmplification bool
	TLS              *TLS       // nil: plaintext
	Options          *Options   // never nil; empty when the file has none
	Instance         api.Module // built and provisioned by Load
	Pos              Pos        // where the listener starts in the file
}

// Load reads the config file at path, in the format its extension names
// (.yaml, .yml or .hcl), checks it and provisions its modules. Errors in the
// file come back as Errors, one FILE:LINE:COL line each; a file that cannot
// be read gives the *fs.PathError, which names path as given.
func Load(path string, logger hclog.Logger) (*Config, error) {
	return LoadEnv(path, Env{Logger: logger})
}

// Env is what the module instances of a config get beside their options.
type Env struct {
	// Logger is the parent of every listener's logger; nil discards.
	Logger hclog.Logger
	// Metrics, when not nil, is asked for the registerer of each
	// listener's instance, where the instance's own collectors go under
	// the labels module and listener. The daemon hands each listener one
	// that records what it registered, so that a reload that retires the
	// listener can unregister it all (admin.Metrics.ListenerRegisterer).
	// nil puts them in a registry that nobody serves (netd validate).
	Metrics func(module, listener string) prometheus.Registerer
}

// LoadEnv is Load with the instances' environment.
func LoadEnv(path string, env Env) (*Config, error) {
	if _, err := formatOf(path); err != nil {
		return nil, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseEnv(path, src, env)
}

// Parse is Load for a file already read: filename names it in errors and
// chooses the format by its extension.
func Parse(filename string, src []byte, logger hclog.Logger) (*Config, error) {
	return ParseEnv(filename, src, Env{Logger: logger})
}

// ParseEnv is Parse with the instances' environment.
func ParseEnv(filename string, src []byte, env Env) (*Config, error) {
	format, err := formatOf(filename)
	if err != nil {
		return nil, err
	}
	if env.Logger == nil {
		env.Logger = hclog.NewNullLogger()
	}
	if env.Metrics == nil {
		// A registry nobody serves, so that a module's registration
		// errors still show at validation.
		reg := prometheus.NewRegistry()
		env.Metrics = func(string, string) prometheus.Registerer { return reg }
	}
	errs := &errList{file: filename}
	var root *value
	var ok bool
	switch format {
	case "yaml":
		var es Errors
		root, es, ok = options.ParseYAML(filename, src)
		errs.errs = append(errs.errs, es...)
	default:
		root, ok = parseHCL(filename, src, errs)
	}
	if !ok {
		// A file that does not parse has no tree worth checking; its
		// syntax errors are all there is to say.
		return nil, errs.result()
	}
	d := decoder{errs: errs}
	cfg, metas := d.config(filename, root)
	loadTLS(cfg, metas, errs)
	provision(cfg, metas, errs, env)
	if err := errs.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func formatOf(filename string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(filename)); ext {
	case ".yaml", ".yml":
		return "yaml", nil
	case ".hcl":
		return "hcl", nil
	default:
		return "", &Error{File: filename, Msg: fmt.Sprintf("unknown config format %q: want .yaml, .yml or .hcl", ext)}
	}
}

// provision builds each listener's module instance and lets it check its
// options. Listeners whose module or address is already known to be bad are
// skipped: their options would be checked against the wrong network.
func provision(cfg *Config, metas []listenerMeta, errs *errList, env Env) {
	for i := range cfg.Listeners {
		l, m := &cfg.Listeners[i], metas[i]
		if l.Module == "" {
			continue
		}
		info, ok := api.Lookup(l.Module)
		if !ok {
			errs.add(m.modulePos, "%s: unknown module %q", m.ctx, l.Module)
			continue
		}
		if !m.addrOK {
			continue
		}
		prefix := fmt.Sprintf("%s: module %s: ", m.ctx, l.Module)
		l.Options.SetOwner(l.Name, l.Module)
		inst, err := provisionOne(info, api.Setup{
			Listener: l.Name,
			Network:  l.Addr.Network(),
			Address:  l.Addr.String(),
			Options:  l.Options,
			Logger:   env.Logger.Named("listener." + l.Name),
			Metrics:  prometheus.WrapRegistererWith(prometheus.Labels{"module": l.Module, "listener": l.Name}, env.Metrics(l.Module, l.Name)),
		})
		if err != nil {
			errs.merge(err, l.Pos, prefix)
			continue
		}
		l.Instance = inst
		network := l.Addr.Network()
		serves := false
		if network == "udp" {
			_, serves = inst.(api.PacketHandler)
		} else {
			_, serves = inst.(api.StreamHandler)
		}
		if !serves {
			errs.add(m.modulePos, "%s: module %s does not serve %s", m.ctx, l.Module, network)
		}
	}
}

// provisionOne turns a module's panic into an error: Load also runs on
// reload, in a daemon that must survive a module that chokes on a config.
func provisionOne(info api.Info, s api.Setup) (inst api.Module, err error) {
	defer func() {
		if r := recover(); r != nil {
			inst, err = nil, fmt.Errorf("Provision panicked: %v", r)
		}
	}()
	inst = info.New()
	if inst == nil {
		return nil, fmt.Errorf("New returned no instance")
	}
	if err := inst.Provision(s); err != nil {
		return nil, err
	}
	return inst, nil
}
