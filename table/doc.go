// Package table describes tables (columns, keys) as read from the database's
// catalog, and the migration plan: the shadow table, the chosen key and the
// column mapping from the original to the shadow.
//
// Per database (mysql*.go, postgres*.go) it owns what osc knows before and
// around the data path: connecting (TLS included), checking the server and
// the table and refusing, with the fix named, what osc cannot migrate
// exactly; the per-table advisory lock; reading the --alter; creating the
// shadow and building the Plan, with each column's conversion; whether a
// native ALTER suffices, and running it; the checkpoint tables and the
// leftovers a resume reads; pairing two tables for osc verify. It also
// holds what the other packages share: identifier quoting (QuoteMySQL,
// QuotePostgres), key ranges, and which errors are transient or refusals.
//
// Both databases' files are cut by the same concepts: *_server.go
// (connecting, naming, the server's checks, the advisory lock),
// *_catalog.go (the catalog readers), *_inspect.go (the table's facts and
// refusals), *_shadow.go (creating the shadow), *_plan.go (the Plan and the
// key); mysql_alter.go reads MySQL's --alter, and one file per feature sits
// beside them (postgres_names.go, postgres_using.go, mysql_fk.go, ...).
//
// It moves no data (copier, cdc, apply, checksum and cutover do) and
// imports no other osc package.
package table
