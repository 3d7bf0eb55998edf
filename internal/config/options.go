package config

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"
)

// Options is a listener's options block: the values as the file spelled
// them, each with its position, for the module to decode. It implements
// api.Options. Decoding does not change it, so it can be decoded any
// number of times.
type Options struct {
	file     string
	listener string // set by Load before Provision, for messages
	module   string
	pos      Pos    // the options block, or the listener when it has none
	root     *value // a mapping; nil only in a zero Options
}

// OptionsFromYAML parses src, a YAML mapping, as an options block, so that
// module tests can provision a module without a whole config file. Errors
// are positioned in filename.
func OptionsFromYAML(filename string, src []byte) (*Options, error) {
	errs := &errList{file: filename}
	root, ok := parseYAML(src, errs)
	if ok && root != nil && root.kind != kindNull && root.kind != kindMap {
		errs.add(root.pos, "options: want a mapping, got %s", root.describe())
	}
	if err := errs.result(); err != nil {
		return nil, err
	}
	if root == nil || root.kind == kindNull {
		root = &value{kind: kindMap, pos: Pos{1, 1}}
	}
	return &Options{file: filename, pos: root.pos, root: root}, nil
}

// Map returns the options as plain Go values: string, bool, int64 (whole
// numbers), float64, []any, map[string]any and nil. It is for comparing
// option blocks, such as a YAML file's and its HCL twin's.
func (o *Options) Map() map[string]any {
	if o == nil || o.root == nil {
		return map[string]any{}
	}
	m, _ := o.root.plain().(map[string]any)
	return m
}

// Errorf returns an *Error positioned at the value of option key, or at
// the options block when key is not set, for a value that decoded but is
// not valid. format and args are as for fmt.Errorf, %w included.
func (o *Options) Errorf(key, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	pos := o.blockPos()
	if f := o.fieldOf(key); f != nil {
		pos = f.val.pos
	}
	return &Error{File: o.fileName(), Pos: pos, Msg: o.prefix() + "option " + key + ": " + err.Error(), err: err}
}

// Decode stores the options in v, a pointer to a struct whose fields are
// tagged `option:"name"`. Fields may be string, bool, any integer kind,
// float32/64, time.Duration (a Go duration string), []string,
// map[string]string, or pointers to these (set only when the option is).
// Untagged embedded structs are searched too. Unknown and ill-typed
// options come back as Errors, every one of them; a v that is not such a
// pointer, or a tagged field of another type, is a plain error, since it
// is the module's mistake rather than the config's.
func (o *Options) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Options.Decode wants a non-nil pointer to a struct, got %T", v)
	}
	fields := map[string][]int{}
	if err := optionFields(rv.Elem().Type(), nil, fields); err != nil {
		return err
	}
	if o == nil || o.root == nil {
		return nil
	}
	var errs Errors
	report := func(pos Pos, format string, args ...any) {
		errs = append(errs, &Error{File: o.file, Pos: pos, Msg: o.prefix() + fmt.Sprintf(format, args...)})
	}
	for _, f := range o.root.fields {
		index, ok := fields[f.key]
		if !ok {
			report(f.keyPos, "unknown option %q", f.key)
			continue
		}
		if f.val.unset() {
			continue // unset, as HCL's null means; the field keeps its default
		}
		setOption(rv.Elem().FieldByIndex(index), f.val, f.key, report)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (o *Options) fieldOf(key string) *field {
	if o == nil {
		return nil
	}
	return o.root.get(key)
}

func (o *Options) blockPos() Pos {
	if o == nil {
		return Pos{}
	}
	return o.pos
}

func (o *Options) fileName() string {
	if o == nil {
		return ""
	}
	return o.file
}

// prefix names the listener and module, so that a message about an option
// says whose option it is.
func (o *Options) prefix() string {
	if o == nil {
		return ""
	}
	var b strings.Builder
	if o.listener != "" {
		fmt.Fprintf(&b, "listener %q: ", o.listener)
	}
	if o.module != "" {
		fmt.Fprintf(&b, "module %s: ", o.module)
	}
	return b.String()
}

var durationType = reflect.TypeOf(time.Duration(0))

// optionFields maps each option name of struct type t to its field index,
// and rejects tags the decoder could never satisfy.
func optionFields(t reflect.Type, prefix []int, out map[string][]int) error {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		tag, tagged := sf.Tag.Lookup("option")
		if !tagged {
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				if err := optionFields(sf.Type, index, out); err != nil {
					return err
				}
			}
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		switch {
		case name == "":
			return fmt.Errorf("config: %s.%s: empty option name", t, sf.Name)
		case !sf.IsExported():
			return fmt.Errorf("config: %s.%s: option %q on an unexported field", t, sf.Name, name)
		case !supportedOption(sf.Type):
			return fmt.Errorf("config: %s.%s: option %q has unsupported type %s", t, sf.Name, name, sf.Type)
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("config: %s: option %q tagged twice", t, name)
		}
		out[name] = index
	}
	return nil
}

func supportedOption(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	case reflect.Map:
		return t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String
	}
	return false
}

type reportFunc func(pos Pos, format string, args ...any)

// setOption stores v in fv, whose type supportedOption accepted, or reports
// why it cannot. name is the option as messages call it.
func setOption(fv reflect.Value, v *value, name string, report reportFunc) {
	t := fv.Type()
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		var failed bool
		setOption(p.Elem(), v, name, func(pos Pos, format string, args ...any) {
			failed = true
			report(pos, format, args...)
		})
		if !failed {
			fv.Set(p)
		}
		return
	}
	if t == durationType {
		d, problem := v.duration()
		if problem != "" {
			report(v.pos, "option %s: %s", name, problem)
			return
		}
		fv.SetInt(int64(d))
		return
	}
	switch t.Kind() {
	case reflect.String:
		if v.kind != kindString {
			report(v.pos, "option %s: want a string, got %s", name, v.describe())
			return
		}
		fv.SetString(v.str)
	case reflect.Bool:
		if v.kind != kindBool {
			report(v.pos, "option %s: want true or false, got %s", name, v.describe())
			return
		}
		fv.SetBool(v.b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.kind != kindNumber || v.num == nil || !v.num.IsInt() {
			report(v.pos, "option %s: want an integer, got %s", name, v.describe())
			return
		}
		i, acc := v.num.Int64()
		if acc != big.Exact || fv.OverflowInt(i) {
			bits := t.Bits()
			report(v.pos, "option %s: %s is out of range (%d..%d)", name, v.describe(),
				int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
			return
		}
		fv.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.kind != kindNumber || v.num == nil || !v.num.IsInt() {
			report(v.pos, "option %s: want an integer, got %s", name, v.describe())
			return
		}
		u, acc := v.num.Uint64()
		if acc != big.Exact || fv.OverflowUint(u) {
			report(v.pos, "option %s: %s is out of range (0..%d)", name, v.describe(), uint64(math.MaxUint64)>>(64-t.Bits()))
			return
		}
		fv.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if v.kind != kindNumber {
			report(v.pos, "option %s: want a number, got %s", name, v.describe())
			return
		}
		f := math.NaN()
		if v.num != nil {
			f, _ = v.num.Float64()
		}
		if fv.OverflowFloat(f) {
			report(v.pos, "option %s: %s is out of range", name, v.describe())
			return
		}
		fv.SetFloat(f)
	case reflect.Slice:
		if v.kind != kindList {
			report(v.pos, "option %s: want a list of strings, got %s", name, v.describe())
			return
		}
		s := reflect.MakeSlice(t, len(v.list), len(v.list))
		for i, e := range v.list {
			if e.kind == kindInvalid {
				continue
			}
			if e.kind != kindString {
				report(e.pos, "option %s[%d]: want a string, got %s", name, i, e.describe())
				continue
			}
			s.Index(i).SetString(e.str)
		}
		fv.Set(s)
	case reflect.Map:
		if v.kind != kindMap {
			report(v.pos, "option %s: want a mapping of strings, got %s", name, v.describe())
			return
		}
		m := reflect.MakeMapWithSize(t, len(v.fields))
		for _, f := range v.fields {
			if f.val.kind == kindInvalid {
				continue
			}
			if f.val.kind != kindString {
				report(f.val.pos, "option %s.%s: want a string, got %s", name, f.key, f.val.describe())
				continue
			}
			m.SetMapIndex(reflect.ValueOf(f.key).Convert(t.Key()), reflect.ValueOf(f.val.str).Convert(t.Elem()))
		}
		fv.Set(m)
	}
}
