package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a config file. Line and Column count from 1; the
// zero Pos means the position is not known.
type Pos struct{ Line, Column int }

// String returns LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// before orders positions; the zero Pos sorts first.
func (p Pos) before(q Pos) bool {
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

	// err is what Msg was formatted from, kept so that errors.Is and
	// errors.As see through errors a module wrapped with %w.
	err error
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
func (e *Error) Unwrap() error { return e.err }

// Errors is every problem found in one config file, sorted by position.
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

// errList collects the problems of one file.
type errList struct {
	file string
	errs Errors
}

func (l *errList) add(pos Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// merge adds err, which came from outside the parser (a module's Provision).
// Positioned errors are kept as they are, since their position is the best
// we have; anything else is placed at pos behind prefix.
func (l *errList) merge(err error, pos Pos, prefix string) {
	if err == nil {
		return
	}
	var es Errors
	if errors.As(err, &es) && len(es) > 0 {
		l.errs = append(l.errs, es...)
		return
	}
	var e *Error
	if errors.As(err, &e) {
		l.errs = append(l.errs, e)
		return
	}
	l.errs = append(l.errs, &Error{File: l.file, Pos: pos, Msg: prefix + err.Error(), err: err})
}

// result returns the problems sorted by position, without exact
// duplicates, or nil when there are none.
func (l *errList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	es := make(Errors, len(l.errs))
	copy(es, l.errs)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Pos.before(es[j].Pos) })
	out := es[:0]
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	return out
}
