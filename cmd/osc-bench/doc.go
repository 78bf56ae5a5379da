// Command osc-bench measures osc against the sandbox, on MariaDB and on
// PostgreSQL: on a table of N rows it times the server's own
// `INSERT INTO copy SELECT * FROM t`, then `osc --execute` with no load and
// under a fixed-rate write load, and prints osc's copy rate beside the raw
// one, with what the writers saw (errors, latency, the longest write held up
// during the cut-over).
//
// It runs the osc binary it is given (make bench builds it) and keeps the
// load with package internal/load; it is a developer's tool, not part of osc.
package main
