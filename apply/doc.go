// Package apply writes captured changes (cdc.Change) into the shadow table,
// one implementation per database of the engine's Applier, which package
// dialect builds from the plan:
//
//   - mysql.go: binlog row images, converted per source column, become
//     multi-row REPLACE of the mapped columns and DELETE by key (the old key
//     of a key-changing update too), in prepared statements of 1, 2, 4, …
//     rows;
//   - postgres.go: pgoutput's text values, cast through the original's
//     column types, become per-batch upserts and deletes, each shadow column
//     computed as the plan says (a USING expression included); a partial
//     update that changes the key is a move;
//   - postgres_clash.go: a write refused by a unique index other than the
//     key, and the refresh of rows a chunk skipped.
//
// It owns how a change becomes SQL on the shadow. It does not read the
// change stream (cdc), copy rows (copier), decide which changes a chunk may
// have missed and must be applied again (the engine's replay window), or
// choose the key and the column mapping (table.Plan).
package apply
