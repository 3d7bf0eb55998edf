package config

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/agext/levenshtein"
	"github.com/netd/netd/pkg/options"
)

// hclShape is how HCL spells a key that YAML spells "key: value".
type hclShape uint8

const (
	hclAttr   hclShape = iota // key = value
	hclBlock                  // key { ... }, at most once
	hclBlocks                 // one labelled block per list item: listener "NAME" { ... }
	hclLabel                  // the label of the enclosing block
)

// key is one key of a mapping in the config tree. The tables of keys below
// are the one place that says what a mapping holds: the HCL schema, the
// check for unknown keys (with its suggestions), the decoder and the
// comparison a reload relies on are all made from them, so that no key can
// be known to one of these and missed by another.
type key[T any] struct {
	name     string
	hcl      hclShape
	hclName  string // hclBlocks: the HCL block type
	hclLabel string // hclBlocks: the key its block label fills
	required bool   // missing or null is an error
	// first keys are decoded before the others, whatever their place in
	// the file: a listener's name, which every other message names.
	first bool
	// decode checks f's value, which is neither null nor invalid, and
	// stores it in dst; what names the key in messages.
	decode func(d *decoder, dst T, f *field, what string)
	// same reports whether a and b agree on the key.
	same func(a, b T) bool
}

// topKeys is the top level of a config file.
var topKeys = []key[*Config]{
	{name: "log", hcl: hclBlock,
		decode: func(d *decoder, c *Config, f *field, _ string) { d.log(&c.Log, f) },
		same:   func(a, b *Config) bool { return differs(logKeys, &a.Log, &b.Log) == nil }},
	countKey("loops", func(c *Config) *int { return &c.Loops }),
	durationKey("shutdown_timeout", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	durationKey("drain_delay", func(c *Config) *time.Duration { return &c.DrainDelay }),
	countKey("max_connections", func(c *Config) *int { return &c.MaxConnections }),
	stringKey("user", func(c *Config) *string { return &c.User }),
	stringKey("group", func(c *Config) *string { return &c.Group }),
	accessLogTopKey,
	{name: "admin", hcl: hclBlock,
		decode: func(d *decoder, c *Config, f *field, _ string) { c.Admin = d.admin(f) },
		same: func(a, b *Config) bool {
			if a.Admin == nil || b.Admin == nil {
				return a.Admin == b.Admin
			}
			return differs(adminKeys, a.Admin, b.Admin) == nil
		}},
	{name: "listeners", hcl: hclBlocks, hclName: "listener", hclLabel: "name",
		decode: func(d *decoder, c *Config, f *field, _ string) { d.listeners(c, f) },
		same: func(a, b *Config) bool {
			if len(a.Listeners) != len(b.Listeners) {
				return false
			}
			for i := range a.Listeners {
				if a.Listeners[i].Differs(b.Listeners[i]) != nil {
					return false
				}
			}
			return true
		}},
}

// logLevels and logFormats are what log.level and log.format accept.
var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

var logKeys = []key[*Log]{
	choiceKey("level", logLevels, func(l *Log) *string { return &l.Level }),
	choiceKey("format", logFormats, func(l *Log) *string { return &l.Format }),
}

// adminKeys is the admin block. mode, user and group are for a unix://
// address only (decoder.admin checks).
var adminKeys = []key[*Admin]{
	{name: "address", required: true,
		decode: func(d *decoder, a *Admin, f *field, what string) { d.adminAddress(a, f, what) },
		same:   func(a, b *Admin) bool { return a.Address == b.Address && a.Addr == b.Addr }},
	{name: "mode",
		decode: func(d *decoder, a *Admin, f *field, what string) { a.Mode = d.fileMode(what, f.Val) },
		same:   func(a, b *Admin) bool { return a.Mode == b.Mode }},
	stringKey("user", func(a *Admin) *string { return &a.User }),
	stringKey("group", func(a *Admin) *string { return &a.Group }),
	boolKey("reload", func(a *Admin) *bool { return &a.Reload }),
	boolKey("pprof", func(a *Admin) *bool { return &a.Pprof }),
}

// listenerKeys is a listener block. Listener.Instance and Listener.Pos are
// not keys: the one is made from the keys, the other says where they are.
var listenerKeys = []key[*Listener]{
	{name: "name", hcl: hclLabel, required: true, first: true,
		decode: func(d *decoder, l *Listener, f *field, _ string) { d.listenerName(l, f) },
		same:   func(a, b *Listener) bool { return a.Name == b.Name }},
	{name: "address", required: true,
		decode: func(d *decoder, l *Listener, f *field, what string) { d.listenerAddress(l, f, what) },
		// Addr is Address parsed; both are compared so that neither can
		// change unseen.
		same: func(a, b *Listener) bool { return a.Address == b.Address && a.Addr == b.Addr }},
	{name: "module", required: true,
		decode: func(d *decoder, l *Listener, f *field, what string) {
			d.lm.modulePos = f.Val.Pos
			l.Module = d.string(what, f.Val)
			if f.Val.Kind == kindString && l.Module == "" {
				d.errs.add(f.Val.Pos, "%s: must not be empty", what)
			}
		},
		same: func(a, b *Listener) bool { return a.Module == b.Module }},
	countKey("max_connections", func(l *Listener) *int { return &l.MaxConnections }),
	durationKey("idle_timeout", func(l *Listener) *time.Duration { return &l.IdleTimeout }),
	// The edge (edge.go): PROXY protocol, access control, access log.
	proxyProtocolKey, allowKey, denyKey, maxPerSourceKey, rateKey, burstKey,
	accessLogKey, udpAmplificationKey,
	{name: "high_watermark",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			l.HighWatermark, d.lm.highPos = d.count(what, f.Val), f.Val.Pos
		},
		same: func(a, b *Listener) bool { return a.HighWatermark == b.HighWatermark }},
	{name: "low_watermark",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			l.LowWatermark, d.lm.lowPos = d.count(what, f.Val), f.Val.Pos
		},
		same: func(a, b *Listener) bool { return a.LowWatermark == b.LowWatermark }},
	{name: "tls", hcl: hclBlock,
		decode: func(d *decoder, l *Listener, f *field, what string) { l.TLS = d.tls(f, what) },
		same: func(a, b *Listener) bool {
			if a.TLS == nil || b.TLS == nil {
				return a.TLS == b.TLS
			}
			return differs(tlsKeys, a.TLS, b.TLS) == nil
		}},
	// The socket file of a unix listener: decoder.socketFile checks that
	// the listener is one.
	{name: "mode",
		decode: func(d *decoder, l *Listener, f *field, what string) { d.socketMode(l, f, what) },
		same:   func(a, b *Listener) bool { return a.SocketMode == b.SocketMode }},
	{name: "user",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			l.SocketUser = d.socketOwner(f, what)
		},
		same: func(a, b *Listener) bool { return a.SocketUser == b.SocketUser }},
	{name: "group",
		decode: func(d *decoder, l *Listener, f *field, what string) {
			l.SocketGroup = d.socketOwner(f, what)
		},
		same: func(a, b *Listener) bool { return a.SocketGroup == b.SocketGroup }},
	{name: "options", hcl: hclBlock,
		decode: func(d *decoder, l *Listener, f *field, what string) {
			if f.Val.Kind != kindMap {
				d.errs.add(f.Val.Pos, "%s: want a mapping, got %s", what, f.Val.Describe())
				return
			}
			l.Options = options.NewBlock(d.errs.file, f.KeyPos, f.Val)
		},
		same: func(a, b *Listener) bool { return reflect.DeepEqual(a.Options.Map(), b.Options.Map()) }},
}

// tlsKeys is a listener's tls block. TLS.Server is not a key: Load makes
// it from the files the keys name. The files are compared by name only: a
// reload re-reads them whether or not the block changed.
var tlsKeys = []key[*TLS]{
	stringKey("cert_file", func(t *TLS) *string { return &t.CertFile }, required),
	stringKey("key_file", func(t *TLS) *string { return &t.KeyFile }, required),
	stringKey("client_ca_file", func(t *TLS) *string { return &t.ClientCAFile }),
	{name: "min_version",
		decode: func(d *decoder, t *TLS, f *field, what string) { t.MinVersion = d.tlsVersion(f, what) },
		same:   func(a, b *TLS) bool { return a.MinVersion == b.MinVersion }},
	{name: "alpn",
		decode: func(d *decoder, t *TLS, f *field, what string) { t.ALPN = d.alpn(f, what) },
		same:   func(a, b *TLS) bool { return slices.Equal(a.ALPN, b.ALPN) }},
	durationKey("handshake_timeout", func(t *TLS) *time.Duration { return &t.HandshakeTimeout }),
}

// Differs names the keys whose settings differ between l and o, in the
// order of a listener block; nil when they are the same listener. A reload
// leaves a listener for which it is nil alone.
func (l Listener) Differs(o Listener) []string { return differs(listenerKeys, &l, &o) }

// Differs names the top-level keys whose settings differ between c and o,
// such as "loops" or "listeners"; nil when none does. File is not a key.
func (c *Config) Differs(o *Config) []string { return differs(topKeys, c, o) }

func differs[T any](keys []key[T], a, b T) []string {
	var out []string
	for _, k := range keys {
		if !k.same(a, b) {
			out = append(out, k.name)
		}
	}
	return out
}

func countKey[T any](name string, p func(T) *int) key[T] {
	return key[T]{name: name,
		decode: func(d *decoder, dst T, f *field, what string) { *p(dst) = d.count(what, f.Val) },
		same:   func(a, b T) bool { return *p(a) == *p(b) }}
}

func durationKey[T any](name string, p func(T) *time.Duration) key[T] {
	return key[T]{name: name,
		decode: func(d *decoder, dst T, f *field, what string) { *p(dst) = d.duration(what, f.Val) },
		same:   func(a, b T) bool { return *p(a) == *p(b) }}
}

// required marks a key made by the helpers below as required.
func required[T any](k *key[T]) { k.required = true }

func stringKey[T any](name string, p func(T) *string, opts ...func(*key[T])) key[T] {
	k := key[T]{name: name,
		decode: func(d *decoder, dst T, f *field, what string) { *p(dst) = d.string(what, f.Val) },
		same:   func(a, b T) bool { return *p(a) == *p(b) }}
	for _, o := range opts {
		o(&k)
	}
	return k
}

func boolKey[T any](name string, p func(T) *bool) key[T] {
	return key[T]{name: name,
		decode: func(d *decoder, dst T, f *field, what string) { *p(dst) = d.bool(what, f.Val) },
		same:   func(a, b T) bool { return *p(a) == *p(b) }}
}

// choiceKey is a string key that takes one of choices, or "" for unset.
func choiceKey[T any](name string, choices []string, p func(T) *string) key[T] {
	return key[T]{name: name,
		decode: func(d *decoder, dst T, f *field, what string) {
			s := d.string(what, f.Val)
			if s != "" && !oneOf(s, choices...) {
				d.errs.add(f.Val.Pos, "%s: unknown %s %q (want %s)", what, name, s, orList(choices))
				return
			}
			*p(dst) = s
		},
		same: func(a, b T) bool { return *p(a) == *p(b) }}
}

// decodeMap decodes the mapping v into dst by keys: every key of v must be
// one of keys, required keys must be set, and each set key is decoded, the
// first ones before the others. *ctx names the mapping in messages ("" at
// the top level); it is read after the first keys, which may change it.
// sep joins it to a key's name (log.level, `listener "a": address`), and a
// missing key is reported at missingAt.
func decodeMap[T any](d *decoder, keys []key[T], v *value, dst T, ctx *string, sep string, missingAt Pos) {
	for _, k := range keys {
		if f := v.Get(k.name); k.first && f != nil && !f.Val.Unset() {
			k.decode(d, dst, f, join(*ctx, sep, k.name))
		}
	}
	for i := range v.Fields {
		f := &v.Fields[i]
		k := lookupKey(keys, f.Key)
		switch {
		case k == nil:
			unknownKey(d, f, *ctx, keys)
		case k.first || f.Val.Unset():
		default:
			k.decode(d, dst, f, join(*ctx, sep, k.name))
		}
	}
	for _, k := range keys {
		if f := v.Get(k.name); k.required && (f == nil || f.Val.Kind == kindNull) {
			d.errs.add(missingAt, "%s: missing %s", *ctx, k.name)
		}
	}
}

func lookupKey[T any](keys []key[T], name string) *key[T] {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

func join(ctx, sep, name string) string {
	if ctx == "" {
		return name
	}
	return ctx + sep + name
}

// unknownKey reports f, a key that keys does not hold, with the known key
// it most likely misspells.
func unknownKey[T any](d *decoder, f *field, ctx string, keys []key[T]) {
	msg := fmt.Sprintf("unknown key %q", f.Key)
	if ctx != "" {
		msg += " in " + ctx
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	if s := suggest(f.Key, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	d.errs.add(f.KeyPos, "%s", msg)
}

// maxSuggestDistance is the most edits between an unknown key and a known
// one for the known one to be suggested: two catch a dropped, doubled or
// swapped letter, and suggest little that is merely short.
const maxSuggestDistance = 2

// suggest returns the known name nearest to name within
// maxSuggestDistance edits, the first of equals, or "".
func suggest(name string, known []string) string {
	best, bestDist := "", maxSuggestDistance+1
	for _, k := range known {
		if dist := levenshtein.Distance(name, k, nil); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}
