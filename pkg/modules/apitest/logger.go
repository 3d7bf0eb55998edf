package apitest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// LogEntry is one message logged through a Logger.
type LogEntry struct {
	Name    string
	Level   hclog.Level
	Message string
	// Args are the key/value pairs, the logger's implied ones first.
	Args []any
}

// Arg returns the value logged under key.
func (e LogEntry) Arg(key string) (any, bool) {
	for i := 0; i+1 < len(e.Args); i += 2 {
		if k, ok := e.Args[i].(string); ok && k == key {
			return e.Args[i+1], true
		}
	}
	return nil, false
}

// Logger is an hclog.Logger for api.Setup that writes to the test's log and
// keeps every entry, its sub-loggers' too, for the test to inspect.
type Logger struct {
	hclog.InterceptLogger
	sink *sink
}

type sink struct {
	mu      sync.Mutex
	entries []LogEntry
}

func (s *sink) Accept(name string, level hclog.Level, msg string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, LogEntry{Name: name, Level: level, Message: msg, Args: args})
}

// NewLogger returns a Logger named after DefaultListener, at trace level,
// writing to tb's log.
func NewLogger(tb testing.TB) *Logger {
	out := &tbWriter{tb: tb}
	tb.Cleanup(out.stop)
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   DefaultListener,
		Level:  hclog.Trace,
		Output: out,
	})
	s := &sink{}
	il.RegisterSink(s)
	return &Logger{InterceptLogger: il, sink: s}
}

// Entries returns what was logged so far, in order.
func (l *Logger) Entries() []LogEntry {
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	return append([]LogEntry(nil), l.sink.entries...)
}

// Find returns the entries at level whose message contains substr.
func (l *Logger) Find(level hclog.Level, substr string) []LogEntry {
	var found []LogEntry
	for _, e := range l.Entries() {
		if e.Level == level && strings.Contains(e.Message, substr) {
			found = append(found, e)
		}
	}
	return found
}

// String renders the entries, one a line, for failure messages.
func (l *Logger) String() string {
	var b strings.Builder
	for _, e := range l.Entries() {
		fmt.Fprintf(&b, "[%s] %s: %s %v\n", e.Level, e.Name, e.Message, e.Args)
	}
	return b.String()
}

// tbWriter forwards log lines to the test, until the test ends: logging
// through a finished test panics.
type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}
