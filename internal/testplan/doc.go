// Package testplan reads a sandbox table from the PostgreSQL catalog into
// osc's table types, for the tests of the packages that take a table.Plan
// (apply, cdc, copier). It is not in testdb because the table package's own
// tests use testdb.
package testplan
