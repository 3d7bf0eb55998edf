package options

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseYAML turns src, the YAML text of the file named file, into a value
// tree, with the problems found in it positioned in that file. ok is false
// when src is not YAML at all, or a tree too big to be worth checking
// further; an empty document is a nil tree.
func ParseYAML(file string, src []byte) (root *Value, errs Errors, ok bool) {
	l := errList{file: file}
	root, ok = parseYAML(src, &l)
	return root, l.errs, ok
}

func parseYAML(src []byte, errs *errList) (*Value, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		addYAMLError(errs, src, err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		addYAMLError(errs, src, err)
		return nil, false
	default:
		errs.add(Pos{next.Line, next.Column}, "a config file holds one YAML document; this is a second one")
	}
	c := yamlConv{errs: errs}
	root := c.value(&doc, 0)
	// A file that blew the node budget is hostile or broken beyond what
	// further messages could help with.
	return root, !c.capped
}

// yamlLineRE matches the "yaml: line N: problem" form of yaml.v3's syntax
// errors.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Bounds on a file whose syntax error is located by reparsing (see
// yamlErrorLine), which costs a parse per line. Config files are far
// smaller; beyond these, yaml.v3's own line is used.
const (
	maxYAMLSearchBytes = 64 << 10
	maxYAMLSearchLines = 1000
)

func addYAMLError(errs *errList, src []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if len(src) <= maxYAMLSearchBytes && bytes.Count(src, []byte("\n")) <= maxYAMLSearchLines {
		if l := yamlErrorLine(src, msg); l > 0 {
			line = l
		}
	}
	pos := Pos{1, 1}
	if line > 0 {
		pos = Pos{line, 1}
		if text := lineOf(src, line); text != "" {
			// yaml.v3 gives no column; the start of the line's text is
			// at least a place to look.
			pos.Column = len([]rune(text)) - len([]rune(strings.TrimLeft(text, " \t"))) + 1
		}
	}
	errs.add(pos, "YAML syntax error: %s", strings.ReplaceAll(msg, "\n", " "))
}

// yamlErrorLine finds the line of a syntax error by parsing ever longer
// prefixes of src: the first prefix that fails with the same problem ends
// at the faulty line. The line yaml.v3 reports is where the enclosing
// construct starts, and for some errors it is off by one or missing.
func yamlErrorLine(src []byte, problem string) int {
	line, off := 0, 0
	for off < len(src) {
		line++
		next := bytes.IndexByte(src[off:], '\n')
		if next < 0 {
			off = len(src)
		} else {
			off += next + 1
		}
		err := yamlCheck(src[:off])
		if err == nil {
			continue
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			msg = m[2]
		}
		if msg == problem {
			return line
		}
	}
	return 0
}

// yamlCheck parses every document in src and returns the first error.
func yamlCheck(src []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func lineOf(src []byte, line int) string {
	for i := 1; i < line; i++ {
		nl := bytes.IndexByte(src, '\n')
		if nl < 0 {
			return ""
		}
		src = src[nl+1:]
	}
	if nl := bytes.IndexByte(src, '\n'); nl >= 0 {
		src = src[:nl]
	}
	return strings.TrimRight(string(src), "\r")
}

// yamlConv converts yaml.v3 nodes to values. It counts what it builds so
// that aliases cannot expand a small file into an enormous tree.
type yamlConv struct {
	errs   *errList
	nodes  int
	capped bool                // the node budget ran out; said once
	deep   bool                // the depth limit was hit; said once
	active map[*yaml.Node]bool // collections being converted, to catch alias cycles
}

func (c *yamlConv) value(n *yaml.Node, depth int) *Value {
	pos := Pos{n.Line, n.Column}
	invalid := &Value{Kind: KindInvalid, Pos: pos}
	c.nodes++
	if c.nodes > MaxNodes {
		if !c.capped {
			c.capped = true
			c.errs.add(pos, "too many values (more than %d, counting what aliases repeat)", MaxNodes)
		}
		return invalid
	}
	if depth > MaxDepth {
		if !c.deep {
			c.deep = true
			c.errs.add(pos, "values nested more than %d deep", MaxDepth)
		}
		return invalid
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.value(n.Content[0], depth)
	case yaml.AliasNode:
		if n.Alias == nil {
			return invalid
		}
		if c.active[n.Alias] {
			c.errs.add(pos, "alias *%s is part of its own value", n.Value)
			return invalid
		}
		// An alias reads as if its anchor's value stood here, so a problem
		// with a scalar points at the alias; inside a collection it points
		// at the anchor's text, where the fix goes.
		v := *c.value(n.Alias, depth+1)
		v.Pos = pos
		return &v
	case yaml.ScalarNode:
		return c.scalar(n, pos)
	case yaml.SequenceNode:
		defer c.enter(n)()
		v := &Value{Kind: KindList, Pos: pos}
		for _, e := range n.Content {
			v.List = append(v.List, c.value(e, depth+1))
		}
		return v
	case yaml.MappingNode:
		defer c.enter(n)()
		return c.mapping(n, pos, depth)
	}
	return invalid
}

// enter marks n as being converted until the returned func runs.
func (c *yamlConv) enter(n *yaml.Node) func() {
	if c.active == nil {
		c.active = map[*yaml.Node]bool{}
	}
	c.active[n] = true
	return func() { delete(c.active, n) }
}

func (c *yamlConv) scalar(n *yaml.Node, pos Pos) *Value {
	v := &Value{Kind: KindNull, Pos: pos, Str: n.Value}
	switch tag := n.ShortTag(); tag {
	case "!!null":
	case "!!str", "!!timestamp":
		v.Kind = KindString
	case "!!bool":
		if err := n.Decode(&v.Bool); err != nil {
			c.errs.add(pos, "invalid boolean %q", n.Value)
			v.Kind = KindInvalid
			return v
		}
		v.Kind = KindBool
	case "!!int":
		var i int64
		var u uint64
		switch {
		case n.Decode(&i) == nil:
			v.Num = new(big.Float).SetInt64(i)
		case n.Decode(&u) == nil:
			v.Num = new(big.Float).SetUint64(u)
		default:
			c.errs.add(pos, "invalid integer %q", n.Value)
			v.Kind = KindInvalid
			return v
		}
		v.Kind = KindNumber
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			c.errs.add(pos, "invalid number %q", n.Value)
			v.Kind = KindInvalid
			return v
		}
		if !math.IsNaN(f) {
			v.Num = new(big.Float).SetFloat64(f)
		}
		v.Kind = KindNumber
	default:
		c.errs.add(pos, "unsupported YAML tag %q", tag)
		v.Kind = KindInvalid
	}
	return v
}

func (c *yamlConv) mapping(n *yaml.Node, pos Pos, depth int) *Value {
	v := &Value{Kind: KindMap, Pos: pos}
	seen := map[string]Pos{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, kv := n.Content[i], n.Content[i+1]
		keyPos := Pos{k.Line, k.Column}
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			c.errs.add(keyPos, "a mapping key must be a string")
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, kv)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			c.errs.add(keyPos, "duplicate key %q (first at %s)", k.Value, first)
			continue
		}
		seen[k.Value] = keyPos
		v.Fields = append(v.Fields, Field{Key: k.Value, KeyPos: keyPos, Val: c.value(kv, depth+1)})
	}
	// Merge keys (<<: *defaults) fill in what the mapping does not set
	// itself; of several merged mappings the first wins, as YAML says.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if r := resolveAlias(m); r.Kind == yaml.SequenceNode {
			srcs = r.Content
		}
		for _, s := range srcs {
			mv := c.value(s, depth+1)
			if mv.Kind != KindMap {
				c.errs.add(mv.Pos, "a merge key (<<) wants a mapping or a list of mappings, got %s", mv.Describe())
				continue
			}
			for _, f := range mv.Fields {
				if _, set := seen[f.Key]; !set {
					seen[f.Key] = f.KeyPos
					v.Fields = append(v.Fields, f)
				}
			}
		}
	}
	return v
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}
