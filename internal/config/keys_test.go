package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netd/netd/internal/access"
	"github.com/netd/netd/pkg/options"
)

// checkTable checks what every key table must hold: unique names, a
// decoder and a comparison for every key, and what HCL needs of a list.
func checkTable[T any](t *testing.T, table string, keys []key[T]) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range keys {
		if k.name == "" || seen[k.name] {
			t.Errorf("%s: key %q is empty or twice", table, k.name)
		}
		seen[k.name] = true
		if k.decode == nil || k.same == nil {
			t.Errorf("%s: key %q lacks a decoder or a comparison", table, k.name)
		}
		if (k.hcl == hclBlocks) != (k.hclName != "" && k.hclLabel != "") {
			t.Errorf("%s: key %q: hclName and hclLabel are for hclBlocks keys, which need both", table, k.name)
		}
	}
}

func TestKeyTables(t *testing.T) {
	checkTable(t, "topKeys", topKeys)
	checkTable(t, "logKeys", logKeys)
	checkTable(t, "adminKeys", adminKeys)
	checkTable(t, "listenerKeys", listenerKeys)
	checkTable(t, "tlsKeys", tlsKeys)
	// The HCL schema is the table's: every key but the label is in it.
	s := hclBodies["listener"]
	var names []string
	for _, a := range s.Attributes {
		names = append(names, a.Name)
	}
	for _, b := range s.Blocks {
		names = append(names, b.Type)
	}
	for _, k := range listenerKeys {
		if in := slices.Contains(names, k.name); in == (k.hcl == hclLabel) {
			t.Errorf("listener key %q (hcl shape %d): in the HCL schema = %v", k.name, k.hcl, in)
		}
	}
}

// notSettings are the fields of Config and Listener that no key sets:
// File and Pos say where, Instance and TLS.Server are made from the keys.
var notSettings = map[string]bool{"File": true, "Pos": true, "Instance": true, "Server": true}

// TestFullSetsEveryField: testdata/good/full.yaml sets every field of
// Config and of its first Listener, so that a field added without a key
// (or without a line in full.yaml and full.hcl) fails here.
func TestFullSetsEveryField(t *testing.T) {
	c, err := Load(filepath.Join(goodDir(t), "full.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(*c)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("full.yaml leaves Config.%s unset: give it a key in keys.go and a value in testdata/good/full.*",
				v.Type().Field(i).Name)
		}
	}
	// Some listener keys suit some networks only (mode on unix): each
	// Listener field must be set by one listener or another.
	lt := reflect.TypeOf(Listener{})
	for i := 0; i < lt.NumField(); i++ {
		set := false
		for _, l := range c.Listeners {
			set = set || !reflect.ValueOf(l).Field(i).IsZero()
		}
		if !set {
			t.Errorf("full.yaml leaves Listener.%s unset: give it a key in keys.go and a value in testdata/good/full.*", lt.Field(i).Name)
		}
	}
	if tls := c.Listeners[0].TLS; tls == nil {
		t.Error("full.yaml's first listener has no tls block")
	} else {
		v := reflect.ValueOf(*tls)
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).IsZero() {
				t.Errorf("full.yaml leaves TLS.%s unset: give it a key in keys.go and a value in testdata/good/full.*", v.Type().Field(i).Name)
			}
		}
	}
}

// mutator changes one leaf of a value (the target'th, in the order walk
// meets them), or with target -1 only counts them.
type mutator struct {
	t      *testing.T
	target int
	n      int
	path   string // of the leaf changed
}

var (
	optionsType = reflect.TypeOf((*Options)(nil))
	setType     = reflect.TypeOf((*access.Set)(nil))
)

func (m *mutator) walk(v reflect.Value, path string) {
	if v.Type() == optionsType {
		m.leaf(v, path, func() {
			o, err := options.FromYAML("x.yaml", []byte("changed: true\n"))
			if err != nil {
				m.t.Fatal(err)
			}
			v.Set(reflect.ValueOf(o))
		})
		return
	}
	if v.Type() == setType {
		// A Set is compared as the list it was parsed from.
		m.leaf(v, path, func() { v.Set(reflect.ValueOf(access.MustParseSet("198.51.100.0/24"))) })
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); !notSettings[f.Name] {
				m.walk(v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			m.leaf(v, path, func() { v.Set(reflect.New(v.Type().Elem())) })
			return
		}
		m.walk(v.Elem(), path)
	case reflect.Slice:
		if v.Len() > 0 {
			m.leaf(v, path+"[:len-1]", func() { v.Set(v.Slice(0, v.Len()-1)) })
		}
		for i := 0; i < v.Len(); i++ {
			m.walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		m.leaf(v, path, func() { v.SetString(v.String() + "x") })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		m.leaf(v, path, func() { v.SetInt(v.Int() + 1) })
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		m.leaf(v, path, func() { v.SetUint(v.Uint() + 1) })
	case reflect.Float64:
		m.leaf(v, path, func() { v.SetFloat(v.Float() + 0.5) })
	case reflect.Bool:
		m.leaf(v, path, func() { v.SetBool(!v.Bool()) })
	default:
		m.t.Errorf("%s: this test cannot change a %s; teach it", path, v.Type())
	}
}

func (m *mutator) leaf(v reflect.Value, path string, change func()) {
	if m.n == m.target {
		if !v.CanSet() {
			m.t.Errorf("%s cannot be set from a test (unexported?)", path)
		} else {
			change()
		}
		m.path = path
	}
	m.n++
}

// TestDiffersSeesEveryField changes each field of a loaded Config and of a
// Listener, down to the leaves, and asks Differs to notice: a field that
// no key compares fails here.
func TestDiffersSeesEveryField(t *testing.T) {
	full := filepath.Join(goodDir(t), "full.yaml")
	load := func() *Config {
		c, err := Load(full, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := load()
	count := &mutator{t: t, target: -1}
	count.walk(reflect.ValueOf(base).Elem(), "Config")
	if count.n < 20 {
		t.Fatalf("only %d leaves in Config", count.n)
	}
	for i := 0; i < count.n; i++ {
		c := load()
		m := &mutator{t: t, target: i}
		m.walk(reflect.ValueOf(c).Elem(), "Config")
		if base.Differs(c) == nil || c.Differs(base) == nil {
			t.Errorf("Config.Differs does not see a change of %s", m.path)
		}
	}

	for li := range base.Listeners {
		count = &mutator{t: t, target: -1}
		count.walk(reflect.ValueOf(&base.Listeners[li]).Elem(), "Listener")
		for i := 0; i < count.n; i++ {
			l := load().Listeners[li]
			m := &mutator{t: t, target: i}
			m.walk(reflect.ValueOf(&l).Elem(), "Listener")
			if base.Listeners[li].Differs(l) == nil || l.Differs(base.Listeners[li]) == nil {
				t.Errorf("Listener.Differs does not see a change of %s in %s", m.path, l.Name)
			}
		}
	}
	if base.Differs(load()) != nil || base.Listeners[0].Differs(load().Listeners[0]) != nil {
		t.Errorf("a config differs from itself loaded again")
	}
}

// keyChanges gives, for every key of a table, a value and a changed one.
type keyChanges map[string][2]string

func (kc keyChanges) render(t *testing.T, names []string, change string, format string, sep string) string {
	t.Helper()
	var parts []string
	for _, n := range names {
		v, ok := kc[n]
		if !ok {
			t.Fatalf("key %q has no values in this test", n)
		}
		i := 0
		if n == change {
			i = 1
		}
		parts = append(parts, fmt.Sprintf("%s: %s", n, v[i]))
	}
	return fmt.Sprintf(format, strings.Join(parts, sep))
}

func names[T any](keys []key[T]) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.name)
	}
	return out
}

// TestListenerDiffers: changing each key of a listener, and only it, makes
// Differs name that key, whichever way round it compares.
func TestListenerDiffers(t *testing.T) {
	kc := keyChanges{
		"name":            {"a", "b"},
		"address":         {"'unix:///run/netd/a.sock'", "'unix:///run/netd/b.sock'"},
		"module":          {"test-echo", "test-metrics"},
		"max_connections": {"1", "2"},
		"idle_timeout":    {"1s", "2s"},
		"high_watermark":  {"8192", "16384"},
		"low_watermark":   {"1024", "2048"},
		"tls":             {"{cert_file: tls/server.pem, key_file: tls/server-key.pem}", "{cert_file: tls/server.pem, key_file: tls/server-key.pem, alpn: [h2]}"},
		"mode":            {"'0660'", "'0600'"},
		"user":            {"a", "b"},
		"group":           {"a", "b"},
		"options":         {"{mode: line}", "{mode: raw}"},
		"proxy_protocol":  {"{mode: require, trusted: [10.0.0.0/8]}", "{mode: require, trusted: [10.0.0.0/16]}"},
		"allow":           {"[10.0.0.0/8]", "[10.0.0.0/9]"},
		"deny":            {"[10.0.0.1]", "[10.0.0.2]"},
		"max_per_source":  {"1", "2"},
		"rate":            {"1", "1.5"},
		"burst":           {"1", "2"},
		"access_log":      {"false", "true"},
	}
	// Some keys suit one network only: each runs where it applies, the
	// tcp run with the edge keys, the unix run with the socket file's keys;
	// udp_amplification has a test of its own below.
	for _, run := range []struct {
		addresses [2]string
		skip      []string
	}{
		{[2]string{"'tcp://127.0.0.1:1'", "'tcp://127.0.0.1:2'"}, []string{"udp_amplification", "mode", "user", "group"}},
		{[2]string{"'unix:///run/netd/a.sock'", "'unix:///run/netd/b.sock'"},
			[]string{"udp_amplification", "proxy_protocol", "allow", "deny", "max_per_source", "rate", "burst"}},
	} {
		kc["address"] = run.addresses
		keys := slices.DeleteFunc(names(listenerKeys), func(n string) bool { return slices.Contains(run.skip, n) })
		file := filepath.Join(goodDir(t), "l.yaml")
		parse := func(change string) Listener {
			t.Helper()
			src := kc.render(t, keys, change, "listeners:\n  - {%s}\n", ", ")
			c, err := Parse(file, []byte(src), nil)
			if err != nil {
				t.Fatalf("%s\n%v", src, err)
			}
			return c.Listeners[0]
		}
		base := parse("")
		if d := base.Differs(parse("")); d != nil {
			t.Errorf("the same listener differs: %v", d)
		}
		for _, k := range keys {
			l := parse(k)
			if d := base.Differs(l); !slices.Equal(d, []string{k}) {
				t.Errorf("changing %s: Differs = %v", k, d)
			}
			if d := l.Differs(base); !slices.Equal(d, []string{k}) {
				t.Errorf("changing %s back: Differs = %v", k, d)
			}
		}
	}
	udp := func(amp string) Listener {
		c, err := Parse("u.yaml", []byte("listeners:\n  - {name: u, address: 'udp://127.0.0.1:1', module: test-echo, udp_amplification: "+amp+"}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Listeners[0]
	}
	if d := udp("deny").Differs(udp("allow")); !slices.Equal(d, []string{"udp_amplification"}) {
		t.Errorf("changing udp_amplification: Differs = %v", d)
	}
}

// TestConfigDiffers: the same for the top-level keys.
func TestConfigDiffers(t *testing.T) {
	kc := keyChanges{
		"log":              {"{level: info, format: text}", "{level: info, format: json}"},
		"loops":            {"1", "2"},
		"shutdown_timeout": {"1s", "2s"},
		"drain_delay":      {"0s", "5s"},
		"max_connections":  {"1", "2"},
		"user":             {"a", "b"},
		"group":            {"a", "b"},
		"admin":            {"{address: '127.0.0.1:9900'}", "{address: '127.0.0.1:9900', reload: true}"},
		"access_log":       {"false", "true"},
		// The listener sets its own access_log: the top-level one is only
		// the default of listeners that set none.
		"listeners": {"[{name: a, address: 'tcp://127.0.0.1:1', module: test-echo, access_log: false}]", "[{name: a, address: 'tcp://127.0.0.1:1', module: test-echo, access_log: false, idle_timeout: 1m}]"},
	}
	keys := names(topKeys)
	parse := func(change string) *Config {
		t.Helper()
		src := kc.render(t, keys, change, "%s\n", "\n")
		c, err := Parse("c.yaml", []byte(src), nil)
		if err != nil {
			t.Fatalf("%s\n%v", src, err)
		}
		return c
	}
	base := parse("")
	for _, k := range keys {
		c := parse(k)
		if d := base.Differs(c); !slices.Equal(d, []string{k}) {
			t.Errorf("changing %s: Differs = %v", k, d)
		}
	}
	// An admin block and none differ.
	c := parse("")
	c.Admin = nil
	if d := base.Differs(c); !slices.Equal(d, []string{"admin"}) {
		t.Errorf("dropping admin: Differs = %v", d)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"address", "module", "max_connections", "idle_timeout", "high_watermark", "low_watermark"}
	for _, c := range []struct{ in, want string }{
		{"adress", "address"},
		{"addresss", "address"},
		{"Address", "address"},
		{"modlue", "module"},
		{"max_conections", "max_connections"},
		{"idle-timeout", "idle_timeout"},
		{"high_water", ""},
		{"port", ""},
		{"", ""},
	} {
		if got := suggest(c.in, known); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
