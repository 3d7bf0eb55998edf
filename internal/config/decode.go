package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/netd/netd/pkg/address"
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
	edge      edgeMeta // where the edge keys are (edge.go)
	tls       *tlsMeta // nil when the listener has no tls key
	// socketPos is the key of the first of mode, user and group given,
	// which only a unix listener may have; socketKey names it.
	socketPos Pos
	socketKey string
}

// decoder turns the format-neutral tree into a Config. It never stops at a
// problem: it records it and goes on with what it can still check.
type decoder struct {
	errs     *errList
	adminPos Pos            // of admin.address, for the address clash check
	adminOK  bool           // admin.address is sound
	names    map[string]Pos // listener names seen so far
	metas    []listenerMeta // one per decoded listener
	lm       *listenerMeta  // the listener being decoded
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
	top := ""
	decodeMap(d, topKeys, root, cfg, &top, "", Pos{Line: 1, Column: 1})
	if f := root.Get("group"); f != nil && cfg.Group != "" && cfg.User == "" {
		// setgid alone would leave netd running as root, looking dropped.
		d.errs.add(f.KeyPos, "group %q without user: netd would go on running as root; set user too", cfg.Group)
	}
	switch f := root.Get("listeners"); {
	case f == nil:
		d.errs.add(Pos{Line: 1, Column: 1}, "no listeners: at least one is required")
	case f.Val.Kind == kindNull:
		d.errs.add(f.KeyPos, "no listeners: at least one is required")
	}
	for i := range cfg.Listeners {
		d.edge(cfg, &cfg.Listeners[i], d.metas[i])
	}
	d.checkAddresses(cfg, d.metas)
	return cfg, d.metas
}

func (d *decoder) log(l *Log, lf *field) {
	if lf.Val.Kind != kindMap {
		d.errs.add(lf.Val.Pos, "log: want a mapping, got %s", lf.Val.Describe())
		return
	}
	ctx := "log"
	decodeMap(d, logKeys, lf.Val, l, &ctx, ".", lf.KeyPos)
}

func (d *decoder) admin(af *field) *Admin {
	v := af.Val
	if v.Kind != kindMap {
		d.errs.add(v.Pos, "admin: want a mapping, got %s", v.Describe())
		return nil
	}
	a := &Admin{}
	ctx := "admin"
	decodeMap(d, adminKeys, v, a, &ctx, ".", af.KeyPos)
	if !d.adminOK {
		return a
	}
	if a.Addr.Scheme == "unix" {
		if a.Mode == 0 {
			a.Mode = DefaultAdminSocketMode
		}
		return a
	}
	for _, k := range []string{"mode", "user", "group"} {
		if f := v.Get(k); f != nil && !f.Val.Unset() {
			d.errs.add(f.KeyPos, "admin.%s: only a unix:// admin address has a socket file to set it on", k)
		}
	}
	return a
}

// adminAddress decodes admin.address: host:port for TCP, or unix:///path.
func (d *decoder) adminAddress(a *Admin, f *field, what string) {
	d.adminPos = f.Val.Pos
	a.Address = d.string(what, f.Val)
	if f.Val.Kind != kindString {
		return
	}
	var problem string
	if strings.Contains(a.Address, "://") {
		addr, err := address.Parse(a.Address)
		if err != nil {
			d.errs.add(f.Val.Pos, "%s: %v", what, err)
			return
		}
		if a.Addr = addr; addr.Scheme != "unix" {
			problem = "want host:port or unix:///path"
		}
	} else {
		a.Addr, problem = Address{Scheme: "tcp", Host: a.Address}, checkHostPort("tcp", a.Address)
	}
	if problem != "" {
		a.Addr = Address{}
		d.errs.add(f.Val.Pos, "%s %q: %s", what, a.Address, problem)
		return
	}
	d.adminOK = true
}

// fileMode decodes permission bits written as an octal string, "0660" or
// "660": a YAML number would read 0660 as 660 decimal in YAML 1.2 and as
// octal in YAML 1.1, so only a string is unambiguous.
func (d *decoder) fileMode(what string, v *value) os.FileMode {
	if v.Kind != kindString {
		d.errs.add(v.Pos, "%s: want an octal string like \"0660\", got %s", what, v.Describe())
		return 0
	}
	n, err := strconv.ParseUint(v.Str, 8, 32)
	if err != nil || n == 0 || n > 0o777 || len(v.Str) < 3 || len(v.Str) > 4 {
		d.errs.add(v.Pos, "%s: %q is not permission bits: want an octal string from \"0001\" to \"0777\", like \"0660\"", what, v.Str)
		return 0
	}
	return os.FileMode(n)
}

// listeners decodes the listener list, which is set: its absence is
// reported by config.
func (d *decoder) listeners(cfg *Config, lf *field) {
	v := lf.Val
	switch {
	case v.Kind == kindList && len(v.List) == 0:
		d.errs.add(lf.KeyPos, "no listeners: at least one is required")
		return
	case v.Kind != kindList:
		d.errs.add(v.Pos, "listeners: want a list, got %s", v.Describe())
		return
	}
	d.names = map[string]Pos{}
	for i, item := range v.List {
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
	if item.Kind != kindMap {
		d.errs.add(item.Pos, "%s: want a mapping, got %s", m.ctx, item.Describe())
		return Listener{}, m, false
	}
	l := Listener{Pos: item.Pos, MaxConnections: DefaultMaxConnections}
	d.lm = &m
	decodeMap(d, listenerKeys, item, &l, &m.ctx, ": ", item.Pos)
	d.lm = nil
	d.watermarks(&l, m)
	d.tlsNetwork(&l, m)
	d.socketFile(&l, m)
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

// listenerName decodes a listener's name and from then on names the
// listener by it in messages.
func (d *decoder) listenerName(l *Listener, f *field) {
	v, m := f.Val, d.lm
	switch {
	case v.Kind != kindString:
		d.errs.add(v.Pos, "%s: name: want a string, got %s", m.ctx, v.Describe())
	case v.Str == "":
		d.errs.add(v.Pos, "%s: name: must not be empty", m.ctx)
	default:
		// A name with characters it may not have is reported, and still
		// used, so that the listener's other problems, its module's
		// options among them, are checked and named in this pass too.
		if problem := checkName(v.Str); problem != "" {
			d.errs.add(v.Pos, "%s: name %q: %s", m.ctx, v.Str, problem)
		}
		l.Name = v.Str
		m.ctx = fmt.Sprintf("listener %q", l.Name)
		if first, dup := d.names[l.Name]; dup {
			d.errs.add(v.Pos, "duplicate listener name %q (first at %s)", l.Name, first)
		} else {
			d.names[l.Name] = v.Pos
		}
	}
}

func (d *decoder) listenerAddress(l *Listener, f *field, what string) {
	v, m := f.Val, d.lm
	m.addrPos = v.Pos
	if v.Kind != kindString {
		d.errs.add(v.Pos, "%s: want a string, got %s", what, v.Describe())
		return
	}
	l.Address = v.Str
	addr, err := address.Parse(v.Str)
	if err != nil {
		d.errs.add(v.Pos, "%s: %v", m.ctx, err)
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
		high, what = api.DefaultHighWatermark, "the default high_watermark"
	}
	if l.LowWatermark >= high {
		d.errs.add(m.lowPos, "%s: low_watermark %d must be below %s, %d", m.ctx, l.LowWatermark, what, high)
	}
}

// socketMode decodes a unix listener's mode: an octal string of
// permission bits, as chmod and systemd's SocketMode take it. A number is
// refused, since YAML reads 0660 as octal in one version and decimal in
// another.
func (d *decoder) socketMode(l *Listener, f *field, what string) {
	d.socketKey(f)
	v := f.Val
	if v.Kind != kindString {
		d.errs.add(v.Pos, "%s: want an octal string such as \"0660\", got %s", what, v.Describe())
		return
	}
	n, err := strconv.ParseUint(v.Str, 8, 32)
	switch {
	case err != nil || len(v.Str) < 3 || len(v.Str) > 4:
		d.errs.add(v.Pos, "%s: %q is not an octal mode such as \"0660\"", what, v.Str)
	case n > 0o777:
		d.errs.add(v.Pos, "%s: %q has bits beyond the permissions (at most 0777)", what, v.Str)
	case n&0o222 == 0:
		d.errs.add(v.Pos, "%s: %q lets no one connect (connecting needs write permission)", what, v.Str)
	default:
		l.SocketMode = os.FileMode(n)
	}
}

// socketOwner decodes a unix listener's user or group: a name or a
// numeric id, looked up when the socket is made.
func (d *decoder) socketOwner(f *field, what string) string {
	d.socketKey(f)
	s := d.string(what, f.Val)
	if f.Val.Kind == kindString && s == "" {
		d.errs.add(f.Val.Pos, "%s: must not be empty (leave it out to keep netd's own)", what)
	}
	return s
}

func (d *decoder) socketKey(f *field) {
	if d.lm.socketKey == "" {
		d.lm.socketPos, d.lm.socketKey = f.KeyPos, f.Key
	}
}

// socketFile refuses mode, user and group on a listener that has no
// socket file: only unix:// listeners do (systemd sets those of an fd://
// socket in its socket unit).
func (d *decoder) socketFile(l *Listener, m listenerMeta) {
	if m.socketKey != "" && m.addrOK && l.Addr.Scheme != "unix" {
		d.errs.add(m.socketPos, "%s: %s applies to a unix:// listener's socket file; this listener is %s://", m.ctx, m.socketKey, l.Addr.Scheme)
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
		Pos       Pos
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
			d.errs.add(metas[i].addrPos, "%s: address %s is already used by %s (at %s)", metas[i].ctx, l.Address, first.ctx, first.Pos)
			continue
		}
		used[key] = user{metas[i].ctx, l.Address, metas[i].addrPos}
	}
	if cfg.Admin == nil || !d.adminOK {
		return
	}
	key := bindKey(cfg.Admin.Addr)
	if first, dup := used[key]; dup && key != "" {
		d.errs.add(first.Pos, "%s: address %s is already used by admin.address (at %s)", first.ctx, first.addr, d.adminPos)
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
