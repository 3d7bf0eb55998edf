package options

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustOptions(t *testing.T, src string) *Block {
	t.Helper()
	o, err := FromYAML("opts.yaml", []byte(src))
	if err != nil {
		t.Fatalf("FromYAML: %v", err)
	}
	return o
}

type echoOptions struct {
	Mode         string `option:"mode"`
	MaxLineBytes int    `option:"max_line_bytes"`
}

// streamOptions has a field of every type Decode supports.
type streamOptions struct {
	Name    string            `option:"name"`
	Count   int               `option:"count"`
	Small   int8              `option:"small"`
	Port    uint16            `option:"port"`
	Ratio   float64           `option:"ratio"`
	Timeout time.Duration     `option:"timeout"`
	Enabled bool              `option:"enabled"`
	List    []string          `option:"list"`
	Env     map[string]string `option:"env"`
	Ptr     *int              `option:"ptr"`
	Ignored string
}

func TestDecodeTwice(t *testing.T) {
	o := mustOptions(t, "mode: raw\nmax_line_bytes: 10\n")
	var a, b echoOptions
	if err := o.Decode(&a); err != nil {
		t.Fatal(err)
	}
	b.MaxLineBytes = 99
	if err := o.Decode(&b); err != nil {
		t.Fatal(err)
	}
	want := echoOptions{Mode: "raw", MaxLineBytes: 10}
	if a != want || b != want {
		t.Errorf("got %+v and %+v, want %+v", a, b, want)
	}
	// A different struct can read the same options too.
	var c struct {
		Mode string `option:"mode"`
		Max  int64  `option:"max_line_bytes"`
	}
	if err := o.Decode(&c); err != nil || c.Mode != "raw" || c.Max != 10 {
		t.Errorf("third decode: %+v, %v", c, err)
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	o := mustOptions(t, "mode: ~\n")
	opts := echoOptions{Mode: "line", MaxLineBytes: 5}
	if err := o.Decode(&opts); err != nil || opts != (echoOptions{Mode: "line", MaxLineBytes: 5}) {
		t.Errorf("got %+v, %v", opts, err)
	}
	var s streamOptions
	if err := mustOptions(t, "").Decode(&s); err != nil || s.Ptr != nil || s.List != nil {
		t.Errorf("empty options: %+v, %v", s, err)
	}
	var nilOpts *Block
	if err := nilOpts.Decode(&s); err != nil {
		t.Errorf("nil Options: %v", err)
	}
	if m := nilOpts.Map(); m == nil || len(m) != 0 {
		t.Errorf("nil Options Map = %v", m)
	}
}

func TestDecodeRanges(t *testing.T) {
	type all struct {
		I8  int8    `option:"i8"`
		I64 int64   `option:"i64"`
		U8  uint8   `option:"u8"`
		U64 uint64  `option:"u64"`
		U   uint    `option:"u"`
		F32 float32 `option:"f32"`
		F64 float64 `option:"f64"`
	}
	var v all
	err := mustOptions(t, "i8: -128\ni64: -9223372036854775808\nu8: 255\nu64: 18446744073709551615\nu: 0\nf32: 1.5\nf64: 3\n").Decode(&v)
	want := all{I8: -128, I64: -9223372036854775808, U8: 255, U64: 18446744073709551615, F32: 1.5, F64: 3}
	if err != nil || v != want {
		t.Errorf("got %+v, %v", v, err)
	}
	err = mustOptions(t, "i8: -129\ni64: 9223372036854775808\nu8: 256\nu64: -1\nu: 1.5\nf32: 1e39\nf64: .nan\n").Decode(&v)
	wantErr := `opts.yaml:1:5: option i8: -129 is out of range (-128..127)
opts.yaml:2:6: option i64: 9223372036854775808 is out of range (-9223372036854775808..9223372036854775807)
opts.yaml:3:5: option u8: 256 is out of range (0..255)
opts.yaml:4:6: option u64: -1 is out of range (0..18446744073709551615)
opts.yaml:5:4: option u: want an integer, got 1.5
opts.yaml:6:6: option f32: 1e39 is out of range`
	if err == nil || err.Error() != wantErr {
		t.Errorf("got:\n%v\nwant:\n%s", err, wantErr)
	}
}

func TestDecodeEmbedded(t *testing.T) {
	type Common struct {
		Timeout time.Duration `option:"timeout"`
	}
	var v struct {
		Common
		Name string `option:"name"`
		Skip string `option:"-"`
	}
	if err := mustOptions(t, "timeout: 2s\nname: x\n").Decode(&v); err != nil || v.Timeout != 2*time.Second || v.Name != "x" {
		t.Errorf("got %+v, %v", v, err)
	}
	err := mustOptions(t, "Skip: x\n").Decode(&v)
	if err == nil || err.Error() != `opts.yaml:1:1: unknown option "Skip"` {
		t.Errorf("got %v", err)
	}
}

func TestDecodeProgrammingErrors(t *testing.T) {
	o := mustOptions(t, "a: 1\n")
	for _, tt := range []struct {
		v    any
		want string
	}{
		{nil, "options: Block.Decode wants a non-nil pointer to a struct, got <nil>"},
		{echoOptions{}, "options: Block.Decode wants a non-nil pointer to a struct, got options.echoOptions"},
		{(*echoOptions)(nil), "options: Block.Decode wants a non-nil pointer to a struct, got *options.echoOptions"},
		{new(int), "options: Block.Decode wants a non-nil pointer to a struct, got *int"},
		{&struct {
			A []int `option:"a"`
		}{}, `options: struct { A []int "option:\"a\"" }.A: option "a" has unsupported type []int`},
		{&struct {
			a int `option:"a"`
		}{}, `options: struct { a int "option:\"a\"" }.a: option "a" on an unexported field`},
		{&struct {
			A int `option:"a"`
			B int `option:"a"`
		}{}, `options: struct { A int "option:\"a\""; B int "option:\"a\"" }: option "a" tagged twice`},
	} {
		err := o.Decode(tt.v)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%T):\n got %v\nwant %s", tt.v, err, tt.want)
		}
		var e *Error
		if errors.As(err, &e) {
			t.Errorf("Decode(%T): a programming error came back as *Error", tt.v)
		}
	}
}

func TestFromYAML(t *testing.T) {
	o := mustOptions(t, "upstreams: [tcp://a:1, 'unix:///b']\nenv: {A: x}\nn: 1.25\nb: true\nz: ~\n")
	want := map[string]any{"upstreams": []any{"tcp://a:1", "unix:///b"}, "env": map[string]any{"A": "x"}, "n": 1.25, "b": true, "z": nil}
	if m := o.Map(); !reflect.DeepEqual(m, want) {
		t.Errorf("Map = %#v", m)
	}
	for _, tt := range []struct{ src, want string }{
		{"- a\n- b\n", "t.yaml:1:1: options: want a mapping, got a list"},
		{"a: [\n", "t.yaml:1:1: YAML syntax error: did not find expected node content"},
		{"a: 1\na: 2\n", `t.yaml:2:1: duplicate key "a" (first at 1:1)`},
	} {
		_, err := FromYAML("t.yaml", []byte(tt.src))
		if err == nil || err.Error() != tt.want {
			t.Errorf("FromYAML(%q):\n got %v\nwant %s", tt.src, err, tt.want)
		}
	}
	if o := mustOptions(t, "# nothing\n"); len(o.Map()) != 0 {
		t.Errorf("empty: %v", o.Map())
	}
}

func TestErrorsFormat(t *testing.T) {
	es := Errors{{File: "a.yaml", Pos: Pos{1, 2}, Msg: "one"}, {File: "a.yaml", Msg: "two"}}
	if got := es.Error(); got != "a.yaml:1:2: one\na.yaml: two" {
		t.Errorf("got %q", got)
	}
	if (Errors{}).Error() != "" || len(es.Unwrap()) != 2 {
		t.Error("empty Errors or Unwrap")
	}
}

func TestDecodeEveryType(t *testing.T) {
	var v streamOptions
	err := mustOptions(t, `name: local socket
count: -3
small: 127
port: 65535
ratio: 0.25
timeout: 1m30s
enabled: true
list: [a, b]
env: {K: v}
ptr: 0
`).Decode(&v)
	zero := 0
	want := streamOptions{Name: "local socket", Count: -3, Small: 127, Port: 65535, Ratio: 0.25,
		Timeout: 90 * time.Second, Enabled: true, List: []string{"a", "b"}, Env: map[string]string{"K": "v"}, Ptr: &zero}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("got %+v, %v\nwant %+v", v, err, want)
	}
	err = mustOptions(t, "name: 1\nenabled: yes please\nlist: [a, 2]\nenv: {K: [1]}\ntimeout: 5\nptr: x\n").Decode(&v)
	wantErr := `opts.yaml:1:7: option name: want a string, got 1
opts.yaml:2:10: option enabled: want true or false, got "yes please"
opts.yaml:3:11: option list[1]: want a string, got 2
opts.yaml:4:10: option env.K: want a string, got a list
opts.yaml:5:10: option timeout: want a duration such as "30s", got 5
opts.yaml:6:6: option ptr: want an integer, got "x"`
	if err == nil || err.Error() != wantErr {
		t.Errorf("got:\n%v\nwant:\n%s", err, wantErr)
	}
}

func TestErrorfOwnerAndWrap(t *testing.T) {
	o := mustOptions(t, "# a comment first\nmode: raw\n")
	o.SetOwner("echo", "echo")
	err := o.Errorf("mode", "cannot use %q: %w", "raw", io.ErrUnexpectedEOF)
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{2, 7}) || e.File != "opts.yaml" {
		t.Fatalf("Errorf(mode) = %#v", err)
	}
	if want := `opts.yaml:2:7: listener "echo": module echo: option mode: cannot use "raw": unexpected EOF`; err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("Errorf lost its %w")
	}
	// An absent key points at the block: here its first key.
	if got := o.Errorf("upstreams", "is required").Error(); got != `opts.yaml:2:1: listener "echo": module echo: option upstreams: is required` {
		t.Errorf("absent key: %s", got)
	}
	// Decode's messages carry the owner too.
	if err := o.Decode(&struct{}{}); err == nil || err.Error() != `opts.yaml:2:1: listener "echo": module echo: unknown option "mode"` {
		t.Errorf("Decode: %v", err)
	}
}

func TestNewBlockWithoutRoot(t *testing.T) {
	o := NewBlock("netd.hcl", Pos{3, 1}, nil)
	if err := o.Decode(&echoOptions{}); err != nil {
		t.Errorf("Decode of an empty block: %v", err)
	}
	if got := o.Errorf("mode", "is required").Error(); got != "netd.hcl:3:1: option mode: is required" {
		t.Errorf("Errorf: %s", got)
	}
}

func TestParseYAMLLimits(t *testing.T) {
	// Aliases that expand a short file into more than MaxNodes values.
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		bomb += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	_, errs, ok := ParseYAML("bomb.yaml", []byte(bomb))
	if ok || len(errs) == 0 || !strings.Contains(errs.Error(), "too many values") {
		t.Errorf("alias bomb: ok %v, %v", ok, errs)
	}
	deep := strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)
	if _, errs, _ := ParseYAML("deep.yaml", []byte("a: "+deep)); !strings.Contains(errs.Error(), "nested more than") {
		t.Errorf("deep: %v", errs)
	}
	root, errs, ok := ParseYAML("two.yaml", []byte("a: 1\n---\nb: 2\n"))
	if !ok || root == nil || errs.Error() != "two.yaml:2:1: a config file holds one YAML document; this is a second one" {
		t.Errorf("two documents: %v, %v, %v", root, errs, ok)
	}
}

// TestDecodeMapOfIntegers: a map's values decode as its element type, each
// checked (and positioned) as an option of its own.
func TestDecodeMapOfIntegers(t *testing.T) {
	var v struct {
		Limits map[string]int64         `option:"limits"`
		Waits  map[string]time.Duration `option:"waits"`
		Ports  map[string]uint16        `option:"ports"`
	}
	err := mustOptions(t, "limits: {nofile: 64, cpu: 10}\nwaits: {a: 1s}\n").Decode(&v)
	if err != nil || !reflect.DeepEqual(v.Limits, map[string]int64{"nofile": 64, "cpu": 10}) || v.Waits["a"] != time.Second {
		t.Fatalf("got %+v, %v", v, err)
	}
	err = mustOptions(t, "limits: {nofile: x, cpu: 1.5}\nports: {p: 70000}\nwaits: [1s]\n").Decode(&v)
	wantErr := `opts.yaml:1:18: option limits.nofile: want an integer, got "x"
opts.yaml:1:26: option limits.cpu: want an integer, got 1.5
opts.yaml:2:12: option ports.p: 70000 is out of range (0..65535)
opts.yaml:3:8: option waits: want a mapping of durations, got a list`
	if err == nil || err.Error() != wantErr {
		t.Errorf("got:\n%v\nwant:\n%s", err, wantErr)
	}
	var bad struct {
		Nested map[string]map[string]int `option:"nested"`
	}
	if err := mustOptions(t, "").Decode(&bad); err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Errorf("a map of maps: %v", err)
	}
}
