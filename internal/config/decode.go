package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/netd/netd/pkg/modules/api"
	"github.com/netd/netd/pkg/options"
)

// listenerMeta is what the checks after decoding need to know about a
// listener beyond its Listener: where its parts are, and whether they are
// sound enough to go on with.
type listenerMeta struct {
	ctx       string // `listener "NAME"`, or `listener #N` when it has no usable name
	modulePos Pos
	addrPos   Pos
	addrOK    bool
	highPos   Pos // high_watermark's value, when given
	lowPos    Pos
}

// decoder turns the format-neutral tree into a Config. It never stops at a
// problem: it records it and goes on with what it can still check.
type decoder struct {
	errs     *errList
	adminPos Pos // of admin.address, for the address clash check
}

func (d *decoder) config(file string, root *value) (*Config, []listenerMeta) {
	cfg := &Config{File: file, ShutdownTimeout: DefaultShutdownTimeout}
	if root == nil || root.Kind == kindNull {
		root = &value{Kind: kindMap, Pos: Pos{Line: 1, Column: 1}}
	}
	if root.Kind == kindInvalid {
		return cfg, nil
	}
	if root.Kind != kindMap {
		d.errs.add(root.Pos, "want a mapping of settings at the top level, got %s", root.Describe())
		return cfg, nil
	}
	var listeners *field
	for i := range root.Fields {
		f := &root.Fields[i]
		v := f.Val
		if f.Key == "listeners" {
			listeners = f
			continue
		}
		if v.Unset() {
			if !knownTopKey(f.Key) {
				d.errs.add(f.KeyPos, "unknown key %q", f.Key)
			}
			continue
		}
		switch f.Key {
		case "log":
			d.log(&cfg.Log, v)
		case "loops":
			cfg.Loops = d.count("loops", v)
		case "shutdown_timeout":
			cfg.ShutdownTimeout = d.duration("shutdown_timeout", v)
		case "max_connections":
			cfg.MaxConnections = d.count("max_connections", v)
		case "user":
			cfg.User = d.string("user", v)
		case "group":
			cfg.Group = d.string("group", v)
		case "admin":
			cfg.Admin = d.admin(f)
		default:
			d.errs.add(f.KeyPos, "unknown key %q", f.Key)
		}
	}
	metas := d.listeners(cfg, listeners)
	d.checkAddresses(cfg, metas)
	return cfg, metas
}

func knownTopKey(k string) bool {
	switch k {
	case "log", "loops", "shutdown_timeout", "max_connections", "user", "group", "admin", "listeners":
		return true
	}
	return false
}

func (d *decoder) log(l *Log, v *value) {
	if v.Kind != kindMap {
		d.errs.add(v.Pos, "log: want a mapping, got %s", v.Describe())
		return
	}
	for _, f := range v.Fields {
		if f.Key != "level" && f.Key != "format" {
			d.errs.add(f.KeyPos, "unknown key %q in log", f.Key)
			continue
		}
		if f.Val.Unset() {
			continue
		}
		s := d.string("log."+f.Key, f.Val)
		switch {
		case s == "":
		case f.Key == "level" && !oneOf(s, "trace", "debug", "info", "warn", "error"):
			d.errs.add(f.Val.Pos, "log.level: unknown level %q (want trace, debug, info, warn or error)", s)
		case f.Key == "format" && !oneOf(s, "text", "json"):
			d.errs.add(f.Val.Pos, "log.format: unknown format %q (want text or json)", s)
		case f.Key == "level":
			l.Level = s
		default:
			l.Format = s
		}
	}
}

func (d *decoder) admin(af *field) *Admin {
	v := af.Val
	if v.Kind != kindMap {
		d.errs.add(v.Pos, "admin: want a mapping, got %s", v.Describe())
		return nil
	}
	a := &Admin{}
	for _, f := range v.Fields {
		switch f.Key {
		case "address":
			if f.Val.Unset() {
				continue
			}
			d.adminPos = f.Val.Pos
			a.Address = d.string("admin.address", f.Val)
			if f.Val.Kind == kindString {
				problem := checkHostPort("tcp", a.Address)
				if strings.Contains(a.Address, "://") {
					problem = "want host:port, without a scheme"
				}
				if problem != "" {
					d.errs.add(f.Val.Pos, "admin.address %q: %s", a.Address, problem)
				}
			}
		case "pprof":
			if !f.Val.Unset() {
				a.Pprof = d.bool("admin.pprof", f.Val)
			}
		default:
			d.errs.add(f.KeyPos, "unknown key %q in admin", f.Key)
		}
	}
	if f := v.Get("address"); f == nil || f.Val.Kind == kindNull {
		d.errs.add(af.KeyPos, "admin: missing address")
	}
	return a
}

func (d *decoder) listeners(cfg *Config, lf *field) []listenerMeta {
	if lf == nil {
		d.errs.add(Pos{Line: 1, Column: 1}, "no listeners: at least one is required")
		return nil
	}
	v := lf.Val
	switch {
	case v.Kind == kindInvalid:
		return nil
	case v.Kind == kindNull || (v.Kind == kindList && len(v.List) == 0):
		d.errs.add(lf.KeyPos, "no listeners: at least one is required")
		return nil
	case v.Kind != kindList:
		d.errs.add(v.Pos, "listeners: want a list, got %s", v.Describe())
		return nil
	}
	names := map[string]Pos{}
	var metas []listenerMeta
	for i, item := range v.List {
		l, m, ok := d.listener(i+1, item, names)
		if ok {
			cfg.Listeners = append(cfg.Listeners, l)
			metas = append(metas, m)
		}
	}
	return metas
}

// listener decodes the i'th listener. It reports false when item is not
// a mapping at all, since nothing about it can be checked further.
func (d *decoder) listener(i int, item *value, names map[string]Pos) (Listener, listenerMeta, bool) {
	m := listenerMeta{ctx: fmt.Sprintf("listener #%d", i)}
	if item.Kind != kindMap {
		d.errs.add(item.Pos, "%s: want a mapping, got %s", m.ctx, item.Describe())
		return Listener{}, m, false
	}
	l := Listener{Pos: item.Pos}

	// The name comes first whatever its place in the mapping, so that
	// every other message can say which listener it is about.
	nf := item.Get("name")
	switch {
	case nf == nil || nf.Val.Kind == kindNull:
		d.errs.add(item.Pos, "%s: missing name", m.ctx)
	case nf.Val.Kind == kindInvalid:
		// Already reported.
	case nf.Val.Kind != kindString:
		d.errs.add(nf.Val.Pos, "%s: name: want a string, got %s", m.ctx, nf.Val.Describe())
	case checkName(nf.Val.Str) != "":
		d.errs.add(nf.Val.Pos, "%s: name %q: %s", m.ctx, nf.Val.Str, checkName(nf.Val.Str))
	default:
		l.Name = nf.Val.Str
		m.ctx = fmt.Sprintf("listener %q", l.Name)
		if first, dup := names[l.Name]; dup {
			d.errs.add(nf.Val.Pos, "duplicate listener name %q (first at %s)", l.Name, first)
		} else {
			names[l.Name] = nf.Val.Pos
		}
	}

	for _, f := range item.Fields {
		v := f.Val
		if v.Unset() {
			if !oneOf(f.Key, "name", "address", "module", "max_connections", "idle_timeout", "high_watermark", "low_watermark", "options") {
				d.errs.add(f.KeyPos, "unknown key %q in %s", f.Key, m.ctx)
			}
			continue
		}
		switch f.Key {
		case "name":
		case "address":
			m.addrPos = v.Pos
			if v.Kind != kindString {
				d.errs.add(v.Pos, "%s: address: want a string, got %s", m.ctx, v.Describe())
				continue
			}
			l.Address = v.Str
			addr, err := ParseAddress(v.Str)
			if err != nil {
				d.errs.add(v.Pos, "%s: %v", m.ctx, err)
				continue
			}
			l.Addr, m.addrOK = addr, true
		case "module":
			m.modulePos = v.Pos
			l.Module = d.string(m.ctx+": module", v)
			if v.Kind == kindString && l.Module == "" {
				d.errs.add(v.Pos, "%s: module: must not be empty", m.ctx)
			}
		case "max_connections":
			l.MaxConnections = d.count(m.ctx+": max_connections", v)
		case "idle_timeout":
			l.IdleTimeout = d.duration(m.ctx+": idle_timeout", v)
		case "high_watermark":
			l.HighWatermark = d.count(m.ctx+": high_watermark", v)
			m.highPos = v.Pos
		case "low_watermark":
			l.LowWatermark = d.count(m.ctx+": low_watermark", v)
			m.lowPos = v.Pos
		case "options":
			if v.Kind != kindMap {
				d.errs.add(v.Pos, "%s: options: want a mapping, got %s", m.ctx, v.Describe())
				continue
			}
			l.Options = options.NewBlock(d.errs.file, f.KeyPos, v)
		default:
			d.errs.add(f.KeyPos, "unknown key %q in %s", f.Key, m.ctx)
		}
	}
	if f := item.Get("address"); f == nil || f.Val.Kind == kindNull {
		d.errs.add(item.Pos, "%s: missing address", m.ctx)
	}
	if f := item.Get("module"); f == nil || f.Val.Kind == kindNull {
		d.errs.add(item.Pos, "%s: missing module", m.ctx)
	}
	d.watermarks(&l, m)
	if l.Options == nil {
		l.Options = options.NewBlock(d.errs.file, item.Pos, nil)
	}
	if l.Name == "" {
		// Without a name, the listener cannot be provisioned (the module
		// would log under no name); its other problems are reported anyway.
		m.addrOK = false
	}
	return l, m, true
}

// watermarks checks a listener's output watermarks: stream listeners only,
// the low one below the high one (given or default).
func (d *decoder) watermarks(l *Listener, m listenerMeta) {
	if l.HighWatermark == 0 && l.LowWatermark == 0 {
		return
	}
	if m.addrOK && l.Addr.Network() == "udp" {
		pos := m.highPos
		if l.HighWatermark == 0 {
			pos = m.lowPos
		}
		d.errs.add(pos, "%s: watermarks bound a stream connection's output; a udp listener has none", m.ctx)
		return
	}
	high, what := l.HighWatermark, "high_watermark"
	if high == 0 {
		high, what = api.DefaultHighWatermark, "the default high_watermark"
	}
	if l.LowWatermark >= high {
		d.errs.add(m.lowPos, "%s: low_watermark %d must be below %s, %d", m.ctx, l.LowWatermark, what, high)
	}
}

// checkName keeps listener names fit for log fields, metric labels and
// logger names: letters, digits and - _ . : as HAProxy allows.
func checkName(name string) string {
	if name == "" {
		return "must not be empty"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return "use only letters, digits and - _ . :"
		}
	}
	return ""
}

// checkAddresses reports listeners that would bind the same socket, and an
// admin endpoint on a listener's port, before anything binds.
func (d *decoder) checkAddresses(cfg *Config, metas []listenerMeta) {
	type user struct {
		ctx, addr string
		pos       Pos
	}
	used := map[string]user{}
	for i, l := range cfg.Listeners {
		if !metas[i].addrOK {
			continue
		}
		key := l.Addr.bindKey()
		if key == "" {
			continue
		}
		if first, dup := used[key]; dup {
			d.errs.add(metas[i].addrPos, "%s: address %s is already used by %s (at %s)", metas[i].ctx, l.Address, first.ctx, first.pos)
			continue
		}
		used[key] = user{metas[i].ctx, l.Address, metas[i].addrPos}
	}
	if cfg.Admin == nil || cfg.Admin.Address == "" || checkHostPort("tcp", cfg.Admin.Address) != "" {
		return
	}
	key := Address{Scheme: "tcp", Host: cfg.Admin.Address}.bindKey()
	if first, dup := used[key]; dup && key != "" {
		d.errs.add(first.pos, "%s: address %s is already used by admin.address (at %s)", first.ctx, first.addr, d.adminPos)
	}
}

func (d *decoder) string(what string, v *value) string {
	if v.Kind != kindString {
		d.errs.add(v.Pos, "%s: want a string, got %s", what, v.Describe())
		return ""
	}
	return v.Str
}

func (d *decoder) bool(what string, v *value) bool {
	if v.Kind != kindBool {
		d.errs.add(v.Pos, "%s: want true or false, got %s", what, v.Describe())
		return false
	}
	return v.Bool
}

// count decodes a non-negative int.
func (d *decoder) count(what string, v *value) int {
	i, ok := v.Int64()
	switch {
	case !ok && v.Kind == kindNumber && v.Num != nil && v.Num.IsInt():
		d.errs.add(v.Pos, "%s: %s is out of range", what, v.Describe())
	case !ok:
		d.errs.add(v.Pos, "%s: want an integer, got %s", what, v.Describe())
	case i < 0:
		d.errs.add(v.Pos, "%s: must not be negative, got %s", what, v.Describe())
	case i > math.MaxInt:
		d.errs.add(v.Pos, "%s: %s is out of range", what, v.Describe())
	default:
		return int(i)
	}
	return 0
}

// duration decodes a non-negative duration.
func (d *decoder) duration(what string, v *value) time.Duration {
	dur, problem := v.Duration()
	if problem == "" && dur < 0 {
		problem = "must not be negative, got " + v.Describe()
	}
	if problem != "" {
		d.errs.add(v.Pos, "%s: %s", what, problem)
		return 0
	}
	return dur
}

func oneOf(s string, choices ...string) bool {
	for _, c := range choices {
		if s == c {
			return true
		}
	}
	return false
}
