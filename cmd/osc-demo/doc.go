// Command osc-demo shows osc at work against the sandbox: it builds a table
// of 200,000 rows in MariaDB and in PostgreSQL, keeps a live write load on it,
// and migrates it online with `osc --execute`, printing osc's progress and
// what the writers saw (errors, slowest write).
//
// It runs the osc binary it is given (make demo builds it) and keeps the
// load with package internal/load; it is a developer's tool, not part of osc.
package main
