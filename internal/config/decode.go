package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/netd/netd/pkg/address"
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
	if root == nil || root.kind == kindNull {
		root = &value{kind: kindMap, pos: Pos{1, 1}}
	}
	if root.kind == kindInvalid {
		return cfg, nil
	}
	if root.kind != kindMap {
		d.errs.add(root.pos, "want a mapping of settings at the top level, got %s", root.describe())
		return cfg, nil
	}
	var listeners *field
	for i := range root.fields {
		f := &root.fields[i]
		v := f.val
		if f.key == "listeners" {
			listeners = f
			continue
		}
		if v.unset() {
			if !knownTopKey(f.key) {
				d.errs.add(f.keyPos, "unknown key %q", f.key)
			}
			continue
		}
		switch f.key {
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
			d.errs.add(f.keyPos, "unknown key %q", f.key)
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
	if v.kind != kindMap {
		d.errs.add(v.pos, "log: want a mapping, got %s", v.describe())
		return
	}
	for _, f := range v.fields {
		if f.key != "level" && f.key != "format" {
			d.errs.add(f.keyPos, "unknown key %q in log", f.key)
			continue
		}
		if f.val.unset() {
			continue
		}
		s := d.string("log."+f.key, f.val)
		switch {
		case s == "":
		case f.key == "level" && !oneOf(s, "trace", "debug", "info", "warn", "error"):
			d.errs.add(f.val.pos, "log.level: unknown level %q (want trace, debug, info, warn or error)", s)
		case f.key == "format" && !oneOf(s, "text", "json"):
			d.errs.add(f.val.pos, "log.format: unknown format %q (want text or json)", s)
		case f.key == "level":
			l.Level = s
		default:
			l.Format = s
		}
	}
}

func (d *decoder) admin(af *field) *Admin {
	v := af.val
	if v.kind != kindMap {
		d.errs.add(v.pos, "admin: want a mapping, got %s", v.describe())
		return nil
	}
	a := &Admin{}
	for _, f := range v.fields {
		switch f.key {
		case "address":
			if f.val.unset() {
				continue
			}
			d.adminPos = f.val.pos
			a.Address = d.string("admin.address", f.val)
			if f.val.kind == kindString {
				problem := checkHostPort("tcp", a.Address)
				if strings.Contains(a.Address, "://") {
					problem = "want host:port, without a scheme"
				}
				if problem != "" {
					d.errs.add(f.val.pos, "admin.address %q: %s", a.Address, problem)
				}
			}
		case "pprof":
			if !f.val.unset() {
				a.Pprof = d.bool("admin.pprof", f.val)
			}
		default:
			d.errs.add(f.keyPos, "unknown key %q in admin", f.key)
		}
	}
	if f := v.get("address"); f == nil || f.val.kind == kindNull {
		d.errs.add(af.keyPos, "admin: missing address")
	}
	return a
}

func (d *decoder) listeners(cfg *Config, lf *field) []listenerMeta {
	if lf == nil {
		d.errs.add(Pos{1, 1}, "no listeners: at least one is required")
		return nil
	}
	v := lf.val
	switch {
	case v.kind == kindInvalid:
		return nil
	case v.kind == kindNull || (v.kind == kindList && len(v.list) == 0):
		d.errs.add(lf.keyPos, "no listeners: at least one is required")
		return nil
	case v.kind != kindList:
		d.errs.add(v.pos, "listeners: want a list, got %s", v.describe())
		return nil
	}
	names := map[string]Pos{}
	var metas []listenerMeta
	for i, item := range v.list {
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
	if item.kind != kindMap {
		d.errs.add(item.pos, "%s: want a mapping, got %s", m.ctx, item.describe())
		return Listener{}, m, false
	}
	l := Listener{Pos: item.pos}

	// The name comes first whatever its place in the mapping, so that
	// every other message can say which listener it is about.
	nf := item.get("name")
	switch {
	case nf == nil || nf.val.kind == kindNull:
		d.errs.add(item.pos, "%s: missing name", m.ctx)
	case nf.val.kind == kindInvalid:
		// Already reported.
	case nf.val.kind != kindString:
		d.errs.add(nf.val.pos, "%s: name: want a string, got %s", m.ctx, nf.val.describe())
	case checkName(nf.val.str) != "":
		d.errs.add(nf.val.pos, "%s: name %q: %s", m.ctx, nf.val.str, checkName(nf.val.str))
	default:
		l.Name = nf.val.str
		m.ctx = fmt.Sprintf("listener %q", l.Name)
		if first, dup := names[l.Name]; dup {
			d.errs.add(nf.val.pos, "duplicate listener name %q (first at %s)", l.Name, first)
		} else {
			names[l.Name] = nf.val.pos
		}
	}

	for _, f := range item.fields {
		v := f.val
		if v.unset() {
			if !oneOf(f.key, "name", "address", "module", "max_connections", "idle_timeout", "high_watermark", "low_watermark", "options") {
				d.errs.add(f.keyPos, "unknown key %q in %s", f.key, m.ctx)
			}
			continue
		}
		switch f.key {
		case "name":
		case "address":
			m.addrPos = v.pos
			if v.kind != kindString {
				d.errs.add(v.pos, "%s: address: want a string, got %s", m.ctx, v.describe())
				continue
			}
			l.Address = v.str
			addr, err := address.Parse(v.str)
			if err != nil {
				d.errs.add(v.pos, "%s: %v", m.ctx, err)
				continue
			}
			l.Addr, m.addrOK = addr, true
		case "module":
			m.modulePos = v.pos
			l.Module = d.string(m.ctx+": module", v)
			if v.kind == kindString && l.Module == "" {
				d.errs.add(v.pos, "%s: module: must not be empty", m.ctx)
			}
		case "max_connections":
			l.MaxConnections = d.count(m.ctx+": max_connections", v)
		case "idle_timeout":
			l.IdleTimeout = d.duration(m.ctx+": idle_timeout", v)
		case "high_watermark":
			l.HighWatermark = d.count(m.ctx+": high_watermark", v)
			m.highPos = v.pos
		case "low_watermark":
			l.LowWatermark = d.count(m.ctx+": low_watermark", v)
			m.lowPos = v.pos
		case "options":
			if v.kind != kindMap {
				d.errs.add(v.pos, "%s: options: want a mapping, got %s", m.ctx, v.describe())
				continue
			}
			l.Options = &Options{file: d.errs.file, pos: f.keyPos, root: v}
		default:
			d.errs.add(f.keyPos, "unknown key %q in %s", f.key, m.ctx)
		}
	}
	if f := item.get("address"); f == nil || f.val.kind == kindNull {
		d.errs.add(item.pos, "%s: missing address", m.ctx)
	}
	if f := item.get("module"); f == nil || f.val.kind == kindNull {
		d.errs.add(item.pos, "%s: missing module", m.ctx)
	}
	d.watermarks(&l, m)
	if l.Options == nil {
		l.Options = &Options{file: d.errs.file, pos: item.pos, root: &value{kind: kindMap, pos: item.pos}}
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
		high, what = DefaultHighWatermark, "the default high_watermark"
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
		key := bindKey(l.Addr)
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
	key := bindKey(Address{Scheme: "tcp", Host: cfg.Admin.Address})
	if first, dup := used[key]; dup && key != "" {
		d.errs.add(first.pos, "%s: address %s is already used by admin.address (at %s)", first.ctx, first.addr, d.adminPos)
	}
}

func (d *decoder) string(what string, v *value) string {
	if v.kind != kindString {
		d.errs.add(v.pos, "%s: want a string, got %s", what, v.describe())
		return ""
	}
	return v.str
}

func (d *decoder) bool(what string, v *value) bool {
	if v.kind != kindBool {
		d.errs.add(v.pos, "%s: want true or false, got %s", what, v.describe())
		return false
	}
	return v.b
}

// count decodes a non-negative int.
func (d *decoder) count(what string, v *value) int {
	i, ok := v.int64()
	switch {
	case !ok && v.kind == kindNumber && v.num != nil && v.num.IsInt():
		d.errs.add(v.pos, "%s: %s is out of range", what, v.describe())
	case !ok:
		d.errs.add(v.pos, "%s: want an integer, got %s", what, v.describe())
	case i < 0:
		d.errs.add(v.pos, "%s: must not be negative, got %s", what, v.describe())
	case i > math.MaxInt:
		d.errs.add(v.pos, "%s: %s is out of range", what, v.describe())
	default:
		return int(i)
	}
	return 0
}

// duration decodes a non-negative duration.
func (d *decoder) duration(what string, v *value) time.Duration {
	dur, problem := v.duration()
	if problem == "" && dur < 0 {
		problem = "must not be negative, got " + v.describe()
	}
	if problem != "" {
		d.errs.add(v.pos, "%s: %s", what, problem)
		return 0
	}
	return dur
}

// duration returns v as a Go duration string, or a bare 0, which needs no
// unit.
func (v *value) duration() (time.Duration, string) {
	switch v.kind {
	case kindString:
		dur, err := time.ParseDuration(v.str)
		if err != nil {
			return 0, fmt.Sprintf("invalid duration %q", v.str)
		}
		return dur, ""
	case kindNumber:
		if i, ok := v.int64(); ok && i == 0 {
			return 0, ""
		}
	}
	return 0, fmt.Sprintf("want a duration such as \"30s\", got %s", v.describe())
}

func oneOf(s string, choices ...string) bool {
	for _, c := range choices {
		if s == c {
			return true
		}
	}
	return false
}
