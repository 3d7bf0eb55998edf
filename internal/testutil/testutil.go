// Package testutil holds the helpers this module's tests share: polling
// with a bound, dialing a listener by its bound address, round trips and
// half-closes, a log buffer goroutines may share, the hostile-client and
// fragmented-session workloads, and the harness that runs the real netd
// binary as a child process.
//
// It is imported by _test.go files only. Every helper bounds its waits in
// time and fails the test that called it, so that a hung daemon becomes a
// failure with its log, never a hung test run.
package testutil
