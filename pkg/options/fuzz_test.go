package options

import (
	"errors"
	"strings"
	"testing"
)

// FuzzFromYAML: any input gives a Block or well-formed errors, never both
// and never neither, and a Block decodes into a struct of every supported
// type with only positioned errors, never a panic.
func FuzzFromYAML(f *testing.F) {
	for _, seed := range []string{
		"", "# nothing\n", "mode: raw\nmax_line_bytes: 10\n", "- a\n- b\n", "a: [\n", "a: 1\na: 2\n",
		"name: x\ncount: -3\nsmall: 128\nport: 65536\nratio: .nan\ntimeout: 1h\nenabled: yes\nlist: [a, 1]\nenv: {K: v}\nptr: ~\n",
		"base: &b {name: x}\nother:\n  <<: *b\n", "a: !!binary aGk=\n", "a: *nowhere\n", "timeout: 0\nratio: 1e400\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		o, err := FromYAML("fuzz.yaml", src)
		if (o == nil) == (err == nil) {
			t.Fatalf("block %v and error %v", o, err)
		}
		if err != nil {
			checkErrors(t, err)
			return
		}
		_ = o.Map()
		var v streamOptions
		if err := o.Decode(&v); err != nil {
			checkErrors(t, err)
		}
	})
}

// checkErrors asserts that err is a non-empty Errors of one-line messages,
// each positioned in fuzz.yaml.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	for _, e := range es {
		if e.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 || strings.Contains(e.Msg, "\n") {
			t.Fatalf("badly formed error %q", e.Error())
		}
	}
}
