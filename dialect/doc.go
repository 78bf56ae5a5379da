// Package dialect implements engine.Dialect for each database: mysql.go for
// MySQL and MariaDB, postgres.go for PostgreSQL. A dialect owns the
// connections and the advisory lock of one migration, and builds the
// per-database parts the engine drives from the concept packages (table,
// cdc, copier, apply, cutover, throttle). It is the only place the engine's
// interfaces meet the database drivers, so engine stays free of them; the
// command line (cmd/osc) picks the dialect. mysql_revert.go and
// postgres_revert.go add the revert window (engine.Reverse): the reverse
// plan, capture and cut-over.
//
// Its tests run whole migrations through the engine against the sandbox
// (localtests/sandbox.sh).
package dialect
