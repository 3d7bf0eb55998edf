package config

import (
	"math"
	"math/big"
	"strconv"
)

// kind is the type of a value in a config tree.
type kind uint8

const (
	kindNull kind = iota
	kindString
	kindNumber
	kindBool
	kindList
	kindMap
	// kindInvalid stands for a value that was already reported as broken;
	// every check skips it, so that one mistake gives one message.
	kindInvalid
)

// value is one node of the format-neutral tree that both the YAML and the
// HCL front end produce, so that the checks that give a config its meaning
// (and their messages) exist once. Every node keeps its position.
type value struct {
	kind kind
	pos  Pos
	// str is a string's value, or a number as it was written (for messages).
	str string
	// num is a number's value; nil for NaN, which big.Float cannot hold.
	num    *big.Float
	b      bool
	list   []*value
	fields []field
}

// field is one key of a mapping, in file order.
type field struct {
	key    string
	keyPos Pos
	val    *value
}

// get returns the field named key, or nil.
func (v *value) get(key string) *field {
	if v == nil {
		return nil
	}
	for i := range v.fields {
		if v.fields[i].key == key {
			return &v.fields[i]
		}
	}
	return nil
}

// describe renders v for "want X, got Y" messages.
func (v *value) describe() string {
	switch v.kind {
	case kindString:
		return strconv.Quote(v.str)
	case kindNumber:
		return v.str
	case kindBool:
		return strconv.FormatBool(v.b)
	case kindList:
		return "a list"
	case kindMap:
		return "a mapping"
	case kindInvalid:
		return "an invalid value"
	}
	return "null"
}

// unset reports whether v says nothing the checks can use: null, which is
// how YAML and HCL spell "not set", or a value already reported as broken.
func (v *value) unset() bool { return v.kind == kindNull || v.kind == kindInvalid }

// int64 returns v as an int64 when it is a whole number that fits.
func (v *value) int64() (int64, bool) {
	if v.kind != kindNumber || v.num == nil || !v.num.IsInt() {
		return 0, false
	}
	i, acc := v.num.Int64()
	return i, acc == big.Exact
}

// plain converts v to the plain Go values of Options.Map: string, bool,
// int64 for whole numbers that fit and float64 for other numbers, []any,
// map[string]any and nil.
func (v *value) plain() any {
	switch v.kind {
	case kindString:
		return v.str
	case kindBool:
		return v.b
	case kindNumber:
		if i, ok := v.int64(); ok {
			return i
		}
		if v.num == nil {
			return math.NaN()
		}
		f, _ := v.num.Float64()
		return f
	case kindList:
		out := make([]any, len(v.list))
		for i, e := range v.list {
			out[i] = e.plain()
		}
		return out
	case kindMap:
		out := make(map[string]any, len(v.fields))
		for _, f := range v.fields {
			out[f.key] = f.val.plain()
		}
		return out
	}
	return nil
}

// Limits that keep hostile input from exhausting the stack or memory: YAML
// aliases can expand exponentially, and both parsers recurse.
const (
	maxDepth = 64
	maxNodes = 100000
)
