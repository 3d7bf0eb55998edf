//go:build race

package testutil

// RaceEnabled is whether the tests run under -race; Netd then builds the
// daemon with -race too, so that `go test -race` checks the real process,
// not only the test.
const RaceEnabled = true
