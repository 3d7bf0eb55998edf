// Package options is the part of a netd config file that a module sees:
// positioned values, and the decoding of a listener's options block into a
// struct. Every value keeps its line and column, so that an error about an
// option reads FILE:LINE:COL, in the daemon and in a module's tests alike.
//
// internal/config builds the value tree of a whole config file, from YAML
// (ParseYAML) or HCL, and hands each listener's block to its module as a
// *Block, which implements api.Options. apitest builds a Block from a
// snippet of YAML with FromYAML. A module itself needs only api.Options.
package options

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a config file. Line and Column count from 1; the
// zero Pos means the position is not known.
type Pos struct{ Line, Column int }

// String returns LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// Before orders positions; the zero Pos sorts first.
func (p Pos) Before(q Pos) bool {
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Column < q.Column
}

// Error is one problem in a config file, positioned so that editors and
// `netd validate` users can jump to it.
type Error struct {
	File string
	Pos  Pos
	Msg  string
	// Err is what Msg was made from, if anything, kept so that errors.Is
	// and errors.As see through an error a module wrapped with %w.
	Err error
}

// Error returns FILE:LINE:COL: message (FILE: message when the position is
// unknown).
func (e *Error) Error() string {
	if e.Pos.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Column, e.Msg)
}

// Unwrap returns the error the message was made from, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one config file.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Sorted returns the problems sorted by position, without exact
// duplicates, as an error; nil when there are none. es is left as it is.
func (es Errors) Sorted() error {
	if len(es) == 0 {
		return nil
	}
	sorted := make(Errors, len(es))
	copy(sorted, es)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pos.Before(sorted[j].Pos) })
	out := sorted[:0]
	seen := make(map[string]bool, len(sorted))
	for _, e := range sorted {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	return out
}

// errList collects the problems of one file.
type errList struct {
	file string
	errs Errors
}

func (l *errList) add(pos Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}
