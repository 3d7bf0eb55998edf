package config

import (
	"errors"
	"fmt"

	"github.com/netd/netd/pkg/options"
)

// Positions, errors, the value tree and options blocks are pkg/options's,
// which modules and their test kit share with the config; these names keep
// the config's code and API as they were.
type (
	// Pos is a position in a config file (options.Pos).
	Pos = options.Pos
	// Error is one problem in a config file (options.Error).
	Error = options.Error
	// Errors is every problem found in one config file, sorted by position
	// (options.Errors).
	Errors = options.Errors
	// Options is a listener's options block (options.Block).
	Options = options.Block

	value = options.Value
	field = options.Field
)

const (
	kindNull    = options.KindNull
	kindString  = options.KindString
	kindNumber  = options.KindNumber
	kindBool    = options.KindBool
	kindList    = options.KindList
	kindMap     = options.KindMap
	kindInvalid = options.KindInvalid
	maxDepth    = options.MaxDepth
)

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
	l.errs = append(l.errs, &Error{File: l.file, Pos: pos, Msg: prefix + err.Error(), Err: err})
}

// result returns the problems sorted by position, without exact
// duplicates, or nil when there are none.
func (l *errList) result() error { return l.errs.Sorted() }
