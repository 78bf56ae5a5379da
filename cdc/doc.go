// Package cdc reads the committed changes to one table from the database's
// change stream and turns them into one Change type (package change) for
// both databases:
//
//   - mysql.go reads the binlog as a replica would (go-mysql), from a
//     position, and turns the rows of the table and osc's markers (inserts
//     into the changelog table) into changes; it ends at the cut-over's
//     RENAME, where a revert window's reverse reader starts (mysql_revert.go);
//   - postgres.go creates a publication for the table and a pgoutput slot,
//     streams from it (pglogrepl) and drops both on Close; a revert
//     window's reverse capture, started before the swap, skips everything
//     up to the swap's transaction (PostgresConfig.SkipThrough);
//     postgres_resume.go checks and drops what a killed run's capture left;
//   - snapshot.go tells whether a PostgreSQL snapshot saw a transaction.
//
// Each source implements the engine's Source: Next, markers the engine
// waits for, the position to checkpoint and Ack of what was applied. It
// owns reading and decoding changes; it does not write them (apply), and
// the changelog table its MySQL markers go into is created by package table.
package cdc
