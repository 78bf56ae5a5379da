// Package copier copies the original table into the shadow table in
// key-ordered chunks, never overwriting a row already in the shadow, one
// implementation per database of the engine's Copier. Each chunk is an
// INSERT … SELECT in a short READ COMMITTED transaction that reads the
// original without locking it; a row the applier already wrote wins (MySQL:
// ON DUPLICATE KEY UPDATE k = k; PostgreSQL: a plain INSERT where the
// shadow's key range holds no applied row, else ON CONFLICT DO NOTHING). A
// PostgreSQL chunk also reports the snapshot it read with and the rows it
// skipped on a clash; postgres_sql.go builds its statements.
//
// It owns the chunks' SQL and bounds. It does not choose the key or the
// conversions (table.Plan), apply changes (apply), or decide which changes
// a chunk may have missed (the engine's replay window).
package copier
