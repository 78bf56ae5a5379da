// Package testdb connects tests to the sandbox databases that
// localtests/sandbox.sh runs: it reads the OSC_* environment variables (with
// the sandbox's addresses as defaults), ends a test for want of the sandbox
// (a skip that says how to start it, a failure under CI=true), creates the
// tests' schemas and tables fresh and drops them when the test ends, and runs
// setup statements, failing the test on an error.
//
// It is for tests only; it imports no osc package, so that every package's
// own tests can use it.
package testdb
