package options

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/netd/netd/pkg/modules/api"
)

// Block is a listener's options block: the values as the file spelled
// them, each with its position, for the module to decode. Decoding does
// not change it, so it can be decoded any number of times.
type Block struct {
	file     string
	listener string // for messages; see SetOwner
	module   string
	at       Pos    // the options block, or the listener when it has none
	root     *Value // a mapping; nil only in a zero Block
}

var _ api.Options = (*Block)(nil)

// NewBlock returns the options block root, a mapping (nil: an empty one),
// of the file named file; at is where errors about an absent option
// point: the block, or the listener when it has none.
func NewBlock(file string, at Pos, root *Value) *Block {
	if root == nil {
		root = &Value{Kind: KindMap, Pos: at}
	}
	return &Block{file: file, at: at, root: root}
}

// SetOwner names the listener and module the block belongs to, so that
// every message about an option says whose option it is.
func (o *Block) SetOwner(listener, module string) {
	o.listener, o.module = listener, module
}

// FromYAML parses src, a YAML mapping, as an options block, so that module
// tests can provision a module without a whole config file. Errors are
// positioned in file.
func FromYAML(file string, src []byte) (*Block, error) {
	root, errs, ok := ParseYAML(file, src)
	if ok && root != nil && root.Kind != KindNull && root.Kind != KindMap {
		errs = append(errs, &Error{File: file, Pos: root.Pos, Msg: "options: want a mapping, got " + root.Describe()})
	}
	if err := errs.Sorted(); err != nil {
		return nil, err
	}
	if root == nil || root.Kind == KindNull {
		root = &Value{Kind: KindMap, Pos: Pos{1, 1}}
	}
	return NewBlock(file, root.Pos, root), nil
}

// Map returns the options as plain Go values: string, bool, int64 (whole
// numbers), float64, []any, map[string]any and nil. It is for comparing
// option blocks, such as a YAML file's and its HCL twin's.
func (o *Block) Map() map[string]any {
	if o == nil || o.root == nil {
		return map[string]any{}
	}
	m, _ := o.root.Plain().(map[string]any)
	return m
}

// Errorf returns an *Error positioned at the value of option key, or at
// the options block when key is not set, for a value that decoded but is
// not valid. format and args are as for fmt.Errorf, %w included.
func (o *Block) Errorf(key, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	pos := o.blockPos()
	if f := o.fieldOf(key); f != nil {
		pos = f.Val.Pos
	}
	return &Error{File: o.fileName(), Pos: pos, Msg: o.prefix() + "option " + key + ": " + err.Error(), Err: err}
}

// Decode stores the options in v, a pointer to a struct whose fields are
// tagged `option:"name"`. Fields may be string, bool, any integer kind,
// float32/64, time.Duration (a Go duration string), []string, a map from
// string to any of the scalar types (map[string]string, map[string]int64),
// or pointers to these (set only when the option is).
// Untagged embedded structs are searched too. Unknown and ill-typed
// options come back as Errors, every one of them; a v that is not such a
// pointer, or a tagged field of another type, is a plain error, since it
// is the module's mistake rather than the config's.
func (o *Block) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("options: Block.Decode wants a non-nil pointer to a struct, got %T", v)
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
	for _, f := range o.root.Fields {
		index, ok := fields[f.Key]
		if !ok {
			report(f.KeyPos, "unknown option %q", f.Key)
			continue
		}
		if f.Val.Unset() {
			continue // unset, as HCL's null means; the field keeps its default
		}
		setOption(rv.Elem().FieldByIndex(index), f.Val, f.Key, report)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (o *Block) fieldOf(key string) *Field {
	if o == nil {
		return nil
	}
	return o.root.Get(key)
}

func (o *Block) blockPos() Pos {
	if o == nil {
		return Pos{}
	}
	return o.at
}

func (o *Block) fileName() string {
	if o == nil {
		return ""
	}
	return o.file
}

// prefix names the listener and module, so that a message about an option
// says whose option it is.
func (o *Block) prefix() string {
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
			return fmt.Errorf("options: %s.%s: empty option name", t, sf.Name)
		case !sf.IsExported():
			return fmt.Errorf("options: %s.%s: option %q on an unexported field", t, sf.Name, name)
		case !supportedOption(sf.Type):
			return fmt.Errorf("options: %s.%s: option %q has unsupported type %s", t, sf.Name, name, sf.Type)
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("options: %s: option %q tagged twice", t, name)
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
		return t.Key().Kind() == reflect.String && t.Elem().Kind() != reflect.Map &&
			t.Elem().Kind() != reflect.Slice && supportedOption(t.Elem())
	}
	return false
}

type reportFunc func(pos Pos, format string, args ...any)

// setOption stores v in fv, whose type supportedOption accepted, or reports
// why it cannot. name is the option as messages call it.
func setOption(fv reflect.Value, v *Value, name string, report reportFunc) {
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
		d, problem := v.Duration()
		if problem != "" {
			report(v.Pos, "option %s: %s", name, problem)
			return
		}
		fv.SetInt(int64(d))
		return
	}
	switch t.Kind() {
	case reflect.String:
		if v.Kind != KindString {
			report(v.Pos, "option %s: want a string, got %s", name, v.Describe())
			return
		}
		fv.SetString(v.Str)
	case reflect.Bool:
		if v.Kind != KindBool {
			report(v.Pos, "option %s: want true or false, got %s", name, v.Describe())
			return
		}
		fv.SetBool(v.Bool)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Kind != KindNumber || v.Num == nil || !v.Num.IsInt() {
			report(v.Pos, "option %s: want an integer, got %s", name, v.Describe())
			return
		}
		i, acc := v.Num.Int64()
		if acc != big.Exact || fv.OverflowInt(i) {
			bits := t.Bits()
			report(v.Pos, "option %s: %s is out of range (%d..%d)", name, v.Describe(),
				int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
			return
		}
		fv.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Kind != KindNumber || v.Num == nil || !v.Num.IsInt() {
			report(v.Pos, "option %s: want an integer, got %s", name, v.Describe())
			return
		}
		u, acc := v.Num.Uint64()
		if acc != big.Exact || fv.OverflowUint(u) {
			report(v.Pos, "option %s: %s is out of range (0..%d)", name, v.Describe(), uint64(math.MaxUint64)>>(64-t.Bits()))
			return
		}
		fv.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if v.Kind != KindNumber {
			report(v.Pos, "option %s: want a number, got %s", name, v.Describe())
			return
		}
		f := math.NaN()
		if v.Num != nil {
			f, _ = v.Num.Float64()
		}
		if fv.OverflowFloat(f) {
			report(v.Pos, "option %s: %s is out of range", name, v.Describe())
			return
		}
		fv.SetFloat(f)
	case reflect.Slice:
		if v.Kind != KindList {
			report(v.Pos, "option %s: want a list of strings, got %s", name, v.Describe())
			return
		}
		s := reflect.MakeSlice(t, len(v.List), len(v.List))
		for i, e := range v.List {
			if e.Kind == KindInvalid {
				continue
			}
			if e.Kind != KindString {
				report(e.Pos, "option %s[%d]: want a string, got %s", name, i, e.Describe())
				continue
			}
			s.Index(i).SetString(e.Str)
		}
		fv.Set(s)
	case reflect.Map:
		if v.Kind != KindMap {
			report(v.Pos, "option %s: want a mapping of %s, got %s", name, kindPlural(t.Elem()), v.Describe())
			return
		}
		m := reflect.MakeMapWithSize(t, len(v.Fields))
		for _, f := range v.Fields {
			if f.Val.Kind == KindInvalid {
				continue
			}
			e := reflect.New(t.Elem()).Elem()
			failed := false
			setOption(e, f.Val, name+"."+f.Key, func(pos Pos, format string, args ...any) {
				failed = true
				report(pos, format, args...)
			})
			if !failed {
				m.SetMapIndex(reflect.ValueOf(f.Key).Convert(t.Key()), e)
			}
		}
		fv.Set(m)
	}
}

// kindPlural names the values of a map's element type t, for messages.
func kindPlural(t reflect.Type) string {
	switch {
	case t == durationType:
		return "durations"
	case t.Kind() == reflect.String:
		return "strings"
	case t.Kind() == reflect.Bool:
		return "booleans"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "numbers"
	case t.Kind() == reflect.Pointer:
		return kindPlural(t.Elem())
	}
	return "integers"
}
