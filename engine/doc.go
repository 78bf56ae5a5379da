// Package engine runs one online schema migration: the state machine that is
// the same for MySQL and PostgreSQL, driving a Dialect.
//
//	inspect → shadow → capture started → copy ∥ apply → caught up → [postponed] → checksum → cut-over → [revert window] → cleanup
//
// It owns the order of the steps and what keeps them correct together: the
// replay window that applies again the changes a chunk may have missed
// (window.go), the checkpoints a killed run resumes from (checkpoint.go),
// the checksum's chunks and recopies (checksum.go), the choice of a native
// ALTER (native.go), the revert window that runs the migration backwards
// after the cut-over (revert.go), retries of transient failures (retry.go), and the
// operator's side: throttling, hooks, the status output and the command
// socket (control.go, status*.go, server.go).
//
// It imports no database driver (deps_test.go checks it): what differs
// between the databases reaches it through Dialect and the interfaces
// beside it (dialect.go), which package dialect implements. Its unit tests
// run against an in-memory fake dialect (fake_test.go), without a server.
package engine
