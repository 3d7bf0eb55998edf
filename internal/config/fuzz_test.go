package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds seeds f with every testdata file of the given extension.
func addSeeds(f *testing.F, ext string) {
	paths, _ := filepath.Glob("testdata/*/*" + ext)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// checkParse asserts what must hold for any input: a Config that is
// complete, or errors that are well formed, never both and never neither.
func checkParse(t *testing.T, name string, src []byte) {
	t.Helper()
	c, err := Parse(name, src, nil)
	if err == nil {
		if c == nil || len(c.Listeners) == 0 {
			t.Fatalf("no error and config %+v", c)
		}
		for _, l := range c.Listeners {
			if l.Options == nil || l.Instance == nil || l.Name == "" || l.Addr.Scheme == "" {
				t.Fatalf("incomplete listener %+v", l)
			}
		}
		return
	}
	if c != nil {
		t.Fatalf("config and error: %v", err)
	}
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	for _, e := range es {
		if e.File != name || e.Pos.Line < 1 || e.Pos.Column < 1 || strings.Contains(e.Msg, "\n") {
			t.Fatalf("badly formed error %q", e.Error())
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	addSeeds(f, ".yaml")
	f.Fuzz(func(t *testing.T, src []byte) { checkParse(t, "fuzz.yaml", src) })
}

func FuzzParseHCL(f *testing.F) {
	addSeeds(f, ".hcl")
	f.Fuzz(func(t *testing.T, src []byte) { checkParse(t, "fuzz.hcl", src) })
}

// TestHostileInput feeds inputs built to exhaust the stack or memory of a
// recursive parser; each must come back as an error, without a crash.
func TestHostileInput(t *testing.T) {
	// A megabyte overflows the stack of an unguarded hclsyntax; -short
	// still checks that the guards answer.
	n := 1 << 20
	if testing.Short() {
		n = 1 << 16
	}
	cases := map[string]string{
		"brackets.hcl":    "a = " + strings.Repeat("[", n),
		"bangs.hcl":       "a = " + strings.Repeat("!", n) + "true\n",
		"minus.hcl":       "a = " + strings.Repeat("-", n) + "1\n",
		"parens.hcl":      "a = " + strings.Repeat("(", n) + "1\n",
		"templates.hcl":   "a = " + strings.Repeat(`"${`, n/3),
		"conditional.hcl": "a = " + strings.Repeat("true ? 1 : ", n/11) + "1\n",
		"blocks.hcl":      strings.Repeat("a {\n", n/4),
		"objects.hcl":     "a = " + strings.Repeat("{a = ", n/5),
		"flow.yaml":       "a: " + strings.Repeat("[", n),
		"flowmap.yaml":    "a: " + strings.Repeat("{a: ", n/4),
		"block.yaml":      deepYAML(1500),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Behaviour only: an error and no crash. A hang would be caught
			// by the test binary's timeout, not by a clock here.
			checkParse(t, name, []byte(src))
		})
	}
}

func deepYAML(depth int) string {
	var b strings.Builder
	for i := 0; i < depth; i++ {
		b.WriteString(strings.Repeat(" ", i))
		b.WriteString("a:\n")
	}
	return b.String()
}
