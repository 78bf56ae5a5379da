// Command osc changes the schema of a live MySQL/MariaDB or PostgreSQL table
// online: it builds a shadow table with the new schema, copies the rows in
// chunks while applying the table's live changes from the binlog or logical
// replication, and swaps the tables atomically. No triggers.
//
// Besides the migration, `osc ctl` sends a command to a running osc over its
// socket, `osc verify` compares two existing tables and `osc backfill`
// updates a table in throttled, resumable chunks (backfill.go; the runner is
// engine/backfill.go, the SQL package backfill). This package owns
// the command line: flags and their checks, the --conf file, where the
// password comes from, TLS settings, the metrics endpoint and the exit
// statuses. It picks the dialect (package dialect) and hands the migration
// to package engine; it holds no migration logic of its own.
package main
