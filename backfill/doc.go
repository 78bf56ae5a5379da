// Package backfill implements engine.BackfillDialect, the SQL of osc
// backfill, for each database: mysql.go for MySQL and MariaDB, postgres.go
// for PostgreSQL. The runner (chunks, throttling, socket, status, hooks,
// resume) is engine/backfill.go; the command line is cmd/osc/backfill.go.
//
// A backfill walks the table by the key a migration would copy it by (the
// table paired with itself, table.PairMySQL / table.PairPostgres) with the
// copy's own key ranges (table.MySQLCopy, copier.PostgresStatements). Each
// chunk is one transaction: read the chunk's upper key, UPDATE the rows of
// the range that match the --where, save the upper key as the checkpoint in
// the bookkeeping table (<table>_osc_bf), commit. A lock wait timeout per
// chunk (MySQL innodb_lock_wait_timeout and lock_wait_timeout, PostgreSQL
// lock_timeout) makes a chunk, not the application, give way to a long
// transaction; the runner retries it.
//
// The expressions are the user's SQL, passed to the server as written; the
// table's and the key's names are quoted. They must not reach outside the
// place osc gives them: check.go refuses a second statement, and a fragment
// that closes a parenthesis it did not open, so that a --where cannot widen
// a chunk's key range (a lexical check aware of each database's literals and
// comments; on MySQL the statement is also parsed with TiDB's parser and its
// shape checked, mysql_parse.go). The server then prepares each statement,
// which parses it, resolves its names and accepts exactly one statement,
// running nothing.
package backfill
