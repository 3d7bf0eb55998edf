package options

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of Value.
const (
	KindNull Kind = iota
	KindString
	KindNumber
	KindBool
	KindList
	KindMap
	// KindInvalid stands for a value that was already reported as broken;
	// every check skips it, so that one mistake gives one message.
	KindInvalid
)

// Value is one node of the format-neutral tree that both the YAML and the
// HCL front end produce, so that the checks that give a config its meaning
// (and their messages) exist once. Every node keeps its position.
type Value struct {
	Kind Kind
	Pos  Pos
	// Str is a string's value, or a number as it was written (for messages).
	Str string
	// Num is a number's value; nil for NaN, which big.Float cannot hold.
	Num    *big.Float
	Bool   bool
	List   []*Value
	Fields []Field // a mapping's keys, in file order
}

// Field is one key of a mapping.
type Field struct {
	Key    string
	KeyPos Pos
	Val    *Value
}

// Get returns the field named key, or nil.
func (v *Value) Get(key string) *Field {
	if v == nil {
		return nil
	}
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			return &v.Fields[i]
		}
	}
	return nil
}

// Describe renders v for "want X, got Y" messages.
func (v *Value) Describe() string {
	switch v.Kind {
	case KindString:
		return strconv.Quote(v.Str)
	case KindNumber:
		return v.Str
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindList:
		return "a list"
	case KindMap:
		return "a mapping"
	case KindInvalid:
		return "an invalid value"
	}
	return "null"
}

// Unset reports whether v says nothing the checks can use: null, which is
// how YAML and HCL spell "not set", or a value already reported as broken.
func (v *Value) Unset() bool { return v.Kind == KindNull || v.Kind == KindInvalid }

// Int64 returns v as an int64 when it is a whole number that fits.
func (v *Value) Int64() (int64, bool) {
	if v.Kind != KindNumber || v.Num == nil || !v.Num.IsInt() {
		return 0, false
	}
	i, acc := v.Num.Int64()
	return i, acc == big.Exact
}

// Duration returns v as a Go duration string, or a bare 0, which needs no
// unit; otherwise a problem for the message.
func (v *Value) Duration() (time.Duration, string) {
	switch v.Kind {
	case KindString:
		dur, err := time.ParseDuration(v.Str)
		if err != nil {
			return 0, fmt.Sprintf("invalid duration %q", v.Str)
		}
		return dur, ""
	case KindNumber:
		if i, ok := v.Int64(); ok && i == 0 {
			return 0, ""
		}
	}
	return 0, fmt.Sprintf("want a duration such as \"30s\", got %s", v.Describe())
}

// Plain converts v to plain Go values: string, bool, int64 for whole
// numbers that fit and float64 for other numbers, []any, map[string]any
// and nil.
func (v *Value) Plain() any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindBool:
		return v.Bool
	case KindNumber:
		if i, ok := v.Int64(); ok {
			return i
		}
		if v.Num == nil {
			return math.NaN()
		}
		f, _ := v.Num.Float64()
		return f
	case KindList:
		out := make([]any, len(v.List))
		for i, e := range v.List {
			out[i] = e.Plain()
		}
		return out
	case KindMap:
		out := make(map[string]any, len(v.Fields))
		for _, f := range v.Fields {
			out[f.Key] = f.Val.Plain()
		}
		return out
	}
	return nil
}

// Limits that keep hostile input from exhausting the stack or memory: YAML
// aliases can expand exponentially, and both parsers recurse.
const (
	// MaxDepth is how deep values may nest.
	MaxDepth = 64
	// MaxNodes is how many values a file may hold, counting what aliases
	// repeat.
	MaxNodes = 100000
)
