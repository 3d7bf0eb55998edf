//go:build !race

package testutil

// RaceEnabled is whether the tests run under -race (see race_on.go).
const RaceEnabled = false
