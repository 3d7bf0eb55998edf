//go:build race

package main_test

// raceEnabled makes the end-to-end tests build the daemon with -race too,
// so that `go test -race` checks the real process, not only the test.
const raceEnabled = true
