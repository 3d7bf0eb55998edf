package config

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The HCL layout of a config file, made from the key tables. Unknown
// attributes and blocks are reported by HCL itself, with its "did you
// mean" hints.
var (
	hclRootSchema = hclSchema(topKeys)
	// hclBodies is the layout of each block's body, by block type; the
	// body of a block not named here (options) holds free-form attributes.
	hclBodies = map[string]*hcl.BodySchema{
		"log":            hclSchema(logKeys),
		"admin":          hclSchema(adminKeys),
		"listener":       hclSchema(listenerKeys),
		"proxy_protocol": hclSchema(proxyKeys),
		"tls":            hclSchema(tlsKeys),
	}
	// hclBlockKeys is the tree key each block type fills.
	hclBlockKeys = mergeBlockKeys(blockKeys(topKeys), blockKeys(listenerKeys))
)

func hclSchema[T any](keys []key[T]) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, k := range keys {
		switch k.hcl {
		case hclAttr:
			s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: k.name})
		case hclBlock:
			s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: k.name})
		case hclBlocks:
			s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: k.hclName, LabelNames: []string{k.hclLabel}})
		}
	}
	return s
}

// hclBlockKey is the tree key an HCL block fills: a mapping, or, for a
// list, one item of it, whose label is its key label.
type hclBlockKey struct {
	key, label string
	list       bool
}

func blockKeys[T any](keys []key[T]) map[string]hclBlockKey {
	m := map[string]hclBlockKey{}
	for _, k := range keys {
		switch k.hcl {
		case hclBlock:
			m[k.name] = hclBlockKey{key: k.name}
		case hclBlocks:
			m[k.hclName] = hclBlockKey{key: k.name, label: k.hclLabel, list: true}
		}
	}
	return m
}

func mergeBlockKeys(ms ...map[string]hclBlockKey) map[string]hclBlockKey {
	out := map[string]hclBlockKey{}
	for _, m := range ms {
		for t, k := range m {
			if _, dup := out[t]; dup {
				panic("config: HCL block type " + t + " has two meanings")
			}
			out[t] = k
		}
	}
	return out
}

// Bounds on HCL source, checked on its tokens before it is parsed.
// hclsyntax parses recursively, and a megabyte of "[" or "!" overflows the
// goroutine stack, which no recover catches. A number such as 1e999999999
// parses fast but takes hours to print in decimal, which a template
// ("${1e999999999}") does.
const (
	maxHCLNesting    = 256
	maxHCLOperators  = 10000
	maxHCLNumberLen  = 100
	maxHCLNumberExp  = 1000
	maxNumberTextExp = 4096 // binary exponent up to which numbers are printed in decimal
)

// parseHCL turns src into the same value tree parseYAML makes: blocks
// become mappings, listener blocks a list of mappings whose label is their
// name. It reports false when src does not parse.
func parseHCL(filename string, src []byte, errs *errList) (*value, bool) {
	if !checkHCLTokens(filename, src, errs) {
		return nil, false
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	addDiags(errs, diags)
	if file == nil || !onlyRedefinitions(diags) {
		return nil, false
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		errs.add(Pos{Line: 1, Column: 1}, "HCL parser returned a %T body", file.Body)
		return nil, false
	}
	h := hclConv{errs: errs, src: src}
	return h.root(body), true
}

// onlyRedefinitions reports whether diags holds no error but attributes set
// twice. The parser keeps the first and the tree is whole, so the rest of
// the file is worth checking, as a YAML file with a duplicate key is.
func onlyRedefinitions(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary != "Attribute redefined" {
			return false
		}
	}
	return true
}

func checkHCLTokens(filename string, src []byte, errs *errList) bool {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, ops := 0, 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			if depth > maxHCLNesting {
				errs.add(hclPos(t.Range.Start), "nested more than %d deep", maxHCLNesting)
				return false
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenNumberLit:
			if problem := checkHCLNumber(string(t.Bytes)); problem != "" {
				errs.add(hclPos(t.Range.Start), "number %s", problem)
				return false
			}
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenQuestion:
			// Unary operators and conditionals nest without brackets.
			ops++
			if ops > maxHCLOperators {
				errs.add(hclPos(t.Range.Start), "more than %d operators", maxHCLOperators)
				return false
			}
		}
	}
	return true
}

func checkHCLNumber(lit string) string {
	if len(lit) > maxHCLNumberLen {
		return fmt.Sprintf("literal longer than %d characters", maxHCLNumberLen)
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || exp > maxHCLNumberExp || exp < -maxHCLNumberExp {
			return fmt.Sprintf("%s is out of range", lit)
		}
	}
	return ""
}

func hclPos(p hcl.Pos) Pos { return Pos{Line: p.Line, Column: p.Column} }

// addDiags converts HCL's error diagnostics (warnings are dropped) to
// FILE:LINE:COL: summary: detail.
func addDiags(errs *errList, diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		pos := Pos{Line: 1, Column: 1}
		if d.Subject != nil {
			pos = hclPos(d.Subject.Start)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		errs.add(pos, "%s", strings.Join(strings.Fields(msg), " "))
	}
}

type hclConv struct {
	errs *errList
	src  []byte
}

func (h *hclConv) root(body *hclsyntax.Body) *value {
	return h.body(body, hclRootSchema, Pos{Line: 1, Column: 1})
}

// body converts a block's body as schema lays it out (nil: free-form
// attributes). Blocks are converted in file order, those whose labels HCL
// found wrong too, so that their contents are checked with the rest; the
// duplicate of a block is checked, then left out.
func (h *hclConv) body(b *hclsyntax.Body, schema *hcl.BodySchema, pos Pos) *value {
	v := &value{Kind: kindMap, Pos: pos}
	if schema == nil {
		attrs, diags := b.JustAttributes()
		addDiags(h.errs, diags)
		v.Fields = h.attrs(attrs)
		return v
	}
	content, diags := b.Content(schema)
	addDiags(h.errs, diags)
	v.Fields = h.attrs(content.Attributes)
	lists := map[string]*value{}
	first := map[string]Pos{}
	for _, blk := range b.Blocks {
		bk, ok := hclBlockKeys[blk.Type]
		if !ok || !declares(schema, blk.Type) {
			continue // HCL has reported it
		}
		bpos := hclPos(blk.TypeRange.Start)
		inner := h.body(blk.Body, hclBodies[blk.Type], bpos)
		if bk.list {
			inner.Fields = append([]field{h.label(blk, bk.label, bpos)}, inner.Fields...)
			l := lists[bk.key]
			if l == nil {
				l = &value{Kind: kindList, Pos: bpos}
				lists[bk.key] = l
				v.Fields = append(v.Fields, field{Key: bk.key, KeyPos: bpos, Val: l})
			}
			l.List = append(l.List, inner)
			continue
		}
		if at, dup := first[blk.Type]; dup {
			h.errs.add(bpos, "duplicate %s block (first at %s)", blk.Type, at)
			continue
		}
		first[blk.Type] = bpos
		v.Fields = append(v.Fields, field{Key: bk.key, KeyPos: bpos, Val: inner})
	}
	return v
}

// label is the field a list block's label fills. A block without one
// (which HCL has reported) gets an invalid value, so that it is not
// reported again as missing; of too many labels (also reported), the first
// counts.
func (h *hclConv) label(blk *hclsyntax.Block, key string, pos Pos) field {
	if len(blk.Labels) == 0 {
		return field{Key: key, KeyPos: pos, Val: &value{Kind: kindInvalid, Pos: pos}}
	}
	lp := hclPos(blk.LabelRanges[0].Start)
	return field{Key: key, KeyPos: lp, Val: &value{Kind: kindString, Pos: lp, Str: blk.Labels[0]}}
}

func declares(schema *hcl.BodySchema, blockType string) bool {
	for _, b := range schema.Blocks {
		if b.Type == blockType {
			return true
		}
	}
	return false
}

// attrs converts attributes to fields in file order; HCL hands them over
// as a map.
func (h *hclConv) attrs(attrs hcl.Attributes) []field {
	fields := make([]field, 0, len(attrs))
	for _, a := range attrs {
		fields = append(fields, field{Key: a.Name, KeyPos: hclPos(a.NameRange.Start), Val: h.expr(a.Expr, 0)})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].KeyPos.Before(fields[j].KeyPos) })
	return fields
}

// expr evaluates e with no variables and no functions: a config file holds
// literals. Tuple and object constructors are walked rather than evaluated
// whole so that each element keeps its own position.
func (h *hclConv) expr(e hcl.Expression, depth int) *value {
	pos := hclPos(e.Range().Start)
	if depth > maxDepth {
		h.errs.add(pos, "values nested more than %d deep", maxDepth)
		return &value{Kind: kindInvalid, Pos: pos}
	}
	switch x := e.(type) {
	case *hclsyntax.TupleConsExpr:
		v := &value{Kind: kindList, Pos: pos}
		for _, el := range x.Exprs {
			v.List = append(v.List, h.expr(el, depth+1))
		}
		return v
	case *hclsyntax.ObjectConsExpr:
		v := &value{Kind: kindMap, Pos: pos}
		seen := map[string]Pos{}
		for _, item := range x.Items {
			kpos := hclPos(item.KeyExpr.Range().Start)
			key, ok := h.key(item.KeyExpr)
			if !ok {
				continue
			}
			if at, dup := seen[key]; dup {
				h.errs.add(kpos, "duplicate key %q (first at %s)", key, at)
				continue
			}
			seen[key] = kpos
			v.Fields = append(v.Fields, field{Key: key, KeyPos: kpos, Val: h.expr(item.ValueExpr, depth+1)})
		}
		return v
	}
	cv, diags := e.Value(nil)
	addDiags(h.errs, diags)
	if diags.HasErrors() {
		return &value{Kind: kindInvalid, Pos: pos}
	}
	v := h.cty(cv, pos, depth)
	if v.Kind == kindNumber {
		// Messages quote a number as it was written.
		v.Str = string(e.Range().SliceBytes(h.src))
	}
	return v
}

func (h *hclConv) key(e hcl.Expression) (string, bool) {
	pos := hclPos(e.Range().Start)
	kv, diags := e.Value(nil)
	addDiags(h.errs, diags)
	if diags.HasErrors() {
		return "", false
	}
	if kv.IsWhollyKnown() && !kv.IsNull() {
		if s, err := convert.Convert(kv, cty.String); err == nil {
			s, _ = s.Unmark()
			if s.IsKnown() && !s.IsNull() {
				return s.AsString(), true
			}
		}
	}
	h.errs.add(pos, "a key must be a string")
	return "", false
}

// cty converts an evaluated value; all its parts share pos, since a value
// that was computed has no finer positions.
func (h *hclConv) cty(cv cty.Value, pos Pos, depth int) *value {
	invalid := &value{Kind: kindInvalid, Pos: pos}
	if depth > maxDepth {
		h.errs.add(pos, "values nested more than %d deep", maxDepth)
		return invalid
	}
	cv, _ = cv.UnmarkDeep()
	if !cv.IsWhollyKnown() {
		h.errs.add(pos, "value is not known")
		return invalid
	}
	if cv.IsNull() {
		return &value{Kind: kindNull, Pos: pos}
	}
	ty := cv.Type()
	switch {
	case ty == cty.String:
		return &value{Kind: kindString, Pos: pos, Str: cv.AsString()}
	case ty == cty.Bool:
		return &value{Kind: kindBool, Pos: pos, Bool: cv.True()}
	case ty == cty.Number:
		f := cv.AsBigFloat()
		return &value{Kind: kindNumber, Pos: pos, Num: f, Str: numberText(f)}
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		v := &value{Kind: kindList, Pos: pos}
		for it := cv.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			v.List = append(v.List, h.cty(ev, pos, depth+1))
		}
		return v
	case ty.IsMapType() || ty.IsObjectType():
		v := &value{Kind: kindMap, Pos: pos}
		for it := cv.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			v.Fields = append(v.Fields, field{Key: k.AsString(), KeyPos: pos, Val: h.cty(ev, pos, depth+1)})
		}
		return v
	}
	h.errs.add(pos, "unsupported value of type %s", ty.FriendlyName())
	return invalid
}

// numberText prints a computed number for messages, in decimal unless that
// would take too long.
func numberText(f *big.Float) string {
	if exp := f.MantExp(nil); exp > -maxNumberTextExp && exp < maxNumberTextExp {
		return f.Text('g', -1)
	}
	return f.Text('p', 0)
}
