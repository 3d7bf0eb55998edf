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

// The HCL layout of a config file. Unknown attributes and blocks are
// reported by HCL itself, with its "did you mean" hints.
var (
	hclRootSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "loops"}, {Name: "shutdown_timeout"}, {Name: "max_connections"},
			{Name: "user"}, {Name: "group"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "log"}, {Type: "admin"}, {Type: "listener", LabelNames: []string{"name"}},
		},
	}
	hclLogSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "level"}, {Name: "format"}},
	}
	hclAdminSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "address"}, {Name: "pprof"}},
	}
	hclListenerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "address"}, {Name: "module"}, {Name: "max_connections"}, {Name: "idle_timeout"},
			{Name: "high_watermark"}, {Name: "low_watermark"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "options"}},
	}
)

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
	if diags.HasErrors() || file == nil {
		addDiags(errs, diags)
		return nil, false
	}
	h := hclConv{errs: errs, src: src}
	return h.root(file.Body), true
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

func (h *hclConv) root(body hcl.Body) *value {
	content, diags := body.Content(hclRootSchema)
	addDiags(h.errs, diags)
	root := &value{Kind: kindMap, Pos: Pos{Line: 1, Column: 1}}
	root.Fields = h.attrs(content.Attributes)
	var listeners *value
	first := map[string]Pos{}
	for _, b := range content.Blocks {
		pos := hclPos(b.DefRange.Start)
		switch b.Type {
		case "log", "admin":
			if at, dup := first[b.Type]; dup {
				h.errs.add(pos, "duplicate %s block (first at %s)", b.Type, at)
				continue
			}
			first[b.Type] = pos
			schema := hclLogSchema
			if b.Type == "admin" {
				schema = hclAdminSchema
			}
			c, diags := b.Body.Content(schema)
			addDiags(h.errs, diags)
			root.Fields = append(root.Fields, field{Key: b.Type, KeyPos: pos,
				Val: &value{Kind: kindMap, Pos: pos, Fields: h.attrs(c.Attributes)}})
		case "listener":
			if listeners == nil {
				listeners = &value{Kind: kindList, Pos: pos}
				root.Fields = append(root.Fields, field{Key: "listeners", KeyPos: pos, Val: listeners})
			}
			listeners.List = append(listeners.List, h.listener(b))
		}
	}
	return root
}

func (h *hclConv) listener(b *hcl.Block) *value {
	pos := hclPos(b.DefRange.Start)
	v := &value{Kind: kindMap, Pos: pos}
	if len(b.Labels) == 1 {
		lp := hclPos(b.LabelRanges[0].Start)
		v.Fields = append(v.Fields, field{Key: "name", KeyPos: lp, Val: &value{Kind: kindString, Pos: lp, Str: b.Labels[0]}})
	}
	content, diags := b.Body.Content(hclListenerSchema)
	addDiags(h.errs, diags)
	v.Fields = append(v.Fields, h.attrs(content.Attributes)...)
	var optsAt *Pos
	for _, ob := range content.Blocks {
		opos := hclPos(ob.DefRange.Start)
		if optsAt != nil {
			h.errs.add(opos, "duplicate options block (first at %s)", *optsAt)
			continue
		}
		optsAt = &opos
		attrs, diags := ob.Body.JustAttributes()
		addDiags(h.errs, diags)
		v.Fields = append(v.Fields, field{Key: "options", KeyPos: opos,
			Val: &value{Kind: kindMap, Pos: opos, Fields: h.attrs(attrs)}})
	}
	return v
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
