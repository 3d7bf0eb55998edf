package config

import (
	"fmt"
	"math"
	"strings"
	"time"
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
	adminPos Pos            // of admin.address, for the address clash check
	names    map[string]Pos // listener names seen so far
	metas    []listenerMeta // one per decoded listener
	lm       *listenerMeta  // the listener being decoded
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
	top := ""
	decodeMap(d, topKeys, root, cfg, &top, "", Pos{1, 1})
	switch f := root.get("listeners"); {
	case f == nil:
		d.errs.add(Pos{1, 1}, "no listeners: at least one is required")
	case f.val.kind == kindNull:
		d.errs.add(f.keyPos, "no listeners: at least one is required")
	}
	d.checkAddresses(cfg, d.metas)
	return cfg, d.metas
}

func (d *decoder) log(l *Log, lf *field) {
	if lf.val.kind != kindMap {
		d.errs.add(lf.val.pos, "log: want a mapping, got %s", lf.val.describe())
		return
	}
	ctx := "log"
	decodeMap(d, logKeys, lf.val, l, &ctx, ".", lf.keyPos)
}

func (d *decoder) admin(af *field) *Admin {
	v := af.val
	if v.kind != kindMap {
		d.errs.add(v.pos, "admin: want a mapping, got %s", v.describe())
		return nil
	}
	a := &Admin{}
	ctx := "admin"
	decodeMap(d, adminKeys, v, a, &ctx, ".", af.keyPos)
	return a
}

func (d *decoder) adminAddress(a *Admin, f *field, what string) {
	d.adminPos = f.val.pos
	a.Address = d.string(what, f.val)
	if f.val.kind != kindString {
		return
	}
	problem := checkHostPort("tcp", a.Address)
	if strings.Contains(a.Address, "://") {
		problem = "want host:port, without a scheme"
	}
	if problem != "" {
		d.errs.add(f.val.pos, "%s %q: %s", what, a.Address, problem)
	}
}

// listeners decodes the listener list, which is set: its absence is
// reported by config.
func (d *decoder) listeners(cfg *Config, lf *field) {
	v := lf.val
	switch {
	case v.kind == kindList && len(v.list) == 0:
		d.errs.add(lf.keyPos, "no listeners: at least one is required")
		return
	case v.kind != kindList:
		d.errs.add(v.pos, "listeners: want a list, got %s", v.describe())
		return
	}
	d.names = map[string]Pos{}
	for i, item := range v.list {
		l, m, ok := d.listener(i+1, item)
		if ok {
			cfg.Listeners = append(cfg.Listeners, l)
			d.metas = append(d.metas, m)
		}
	}
}

// listener decodes the i'th listener. It reports false when item is not
// a mapping at all, since nothing about it can be checked further.
func (d *decoder) listener(i int, item *value) (Listener, listenerMeta, bool) {
	m := listenerMeta{ctx: fmt.Sprintf("listener #%d", i)}
	if item.kind != kindMap {
		d.errs.add(item.pos, "%s: want a mapping, got %s", m.ctx, item.describe())
		return Listener{}, m, false
	}
	l := Listener{Pos: item.pos}
	d.lm = &m
	decodeMap(d, listenerKeys, item, &l, &m.ctx, ": ", item.pos)
	d.lm = nil
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

// listenerName decodes a listener's name and from then on names the
// listener by it in messages.
func (d *decoder) listenerName(l *Listener, f *field) {
	v, m := f.val, d.lm
	switch {
	case v.kind != kindString:
		d.errs.add(v.pos, "%s: name: want a string, got %s", m.ctx, v.describe())
	case v.str == "":
		d.errs.add(v.pos, "%s: name: must not be empty", m.ctx)
	default:
		// A name with characters it may not have is reported, and still
		// used, so that the listener's other problems, its module's
		// options among them, are checked and named in this pass too.
		if problem := checkName(v.str); problem != "" {
			d.errs.add(v.pos, "%s: name %q: %s", m.ctx, v.str, problem)
		}
		l.Name = v.str
		m.ctx = fmt.Sprintf("listener %q", l.Name)
		if first, dup := d.names[l.Name]; dup {
			d.errs.add(v.pos, "duplicate listener name %q (first at %s)", l.Name, first)
		} else {
			d.names[l.Name] = v.pos
		}
	}
}

func (d *decoder) listenerAddress(l *Listener, f *field, what string) {
	v, m := f.val, d.lm
	m.addrPos = v.pos
	if v.kind != kindString {
		d.errs.add(v.pos, "%s: want a string, got %s", what, v.describe())
		return
	}
	l.Address = v.str
	addr, err := ParseAddress(v.str)
	if err != nil {
		d.errs.add(v.pos, "%s: %v", m.ctx, err)
		return
	}
	l.Addr, m.addrOK = addr, true
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

// orList renders choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

func oneOf(s string, choices ...string) bool {
	for _, c := range choices {
		if s == c {
			return true
		}
	}
	return false
}
