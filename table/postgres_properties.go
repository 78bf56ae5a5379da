package table

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgCopyProperties gives the shadow what LIKE does not copy of the original,
// before the --alter runs on it (so that the --alter changes them as it would
// the original's): column options (SET (n_distinct = …)) and statistics
// targets, the CLUSTER ON
// mark, statistics targets of index columns, comments on index-backed
// constraints, and the replica identity (FULL or USING INDEX). indexNames
// maps the original's indexes to the shadow's.
func pgCopyProperties(ctx context.Context, tx pgx.Tx, origOID uint32, schema, shadowName string, indexNames map[string]string) error {
	shadow := QuotePostgres(schema, shadowName)
	var stmts []string
	// pg_attver (PostgreSQL 15.20 on) is the server's own stamp of when a
	// column was made, which no SET changes: it is not an option to copy.
	opts, err := pgStrings(ctx, tx, `SELECT format('ALTER TABLE %s ALTER COLUMN %I SET (%s)', $2::text, attname, array_to_string(opts, ', '))
		FROM (SELECT attname, ARRAY(SELECT o FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_attver=%') AS opts
			FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attoptions IS NOT NULL) o
		WHERE cardinality(opts) > 0
		UNION ALL
		SELECT format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', $2::text, attname, attstattarget)
		FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0`, origOID, shadow)
	if err != nil {
		return fmt.Errorf("create shadow: read column options: %w", err)
	}
	stmts = append(stmts, opts...)
	rows, err := tx.Query(ctx, `SELECT x.relname::text, i.indisclustered, i.indisreplident,
			coalesce((SELECT quote_literal(obj_description(c.oid, 'pg_constraint')) FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid LIMIT 1), ''),
			ARRAY(SELECT format('ALTER COLUMN %s SET STATISTICS %s', a.attnum, a.attstattarget) FROM pg_attribute a
				WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0 ORDER BY a.attnum)
		FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = $1 ORDER BY 1`, origOID)
	if err != nil {
		return fmt.Errorf("create shadow: read index properties: %w", err)
	}
	type idx struct {
		name, comment        string
		clustered, replident bool
		stats                []string
	}
	idxs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idx, error) {
		var x idx
		return x, r.Scan(&x.name, &x.clustered, &x.replident, &x.comment, &x.stats)
	})
	if err != nil {
		return fmt.Errorf("create shadow: read index properties: %w", err)
	}
	for _, x := range idxs {
		to, ok := indexNames[x.name]
		if !ok {
			continue
		}
		if x.clustered {
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s CLUSTER ON %s", shadow, QuotePostgres(to)))
		}
		if x.replident {
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s", shadow, QuotePostgres(to)))
		}
		if x.comment != "" {
			stmts = append(stmts, fmt.Sprintf("COMMENT ON CONSTRAINT %s ON %s IS %s", QuotePostgres(to), shadow, x.comment))
		}
		for _, s := range x.stats {
			stmts = append(stmts, fmt.Sprintf("ALTER INDEX %s %s", QuotePostgres(schema, to), s))
		}
	}
	// The replica identity is the shadow's before the --alter runs, which
	// may change it (REPLICA IDENTITY DEFAULT), or drop its index (leaving
	// 'i' without one), as the plain ALTER does to the original's.
	var full bool
	if err := tx.QueryRow(ctx, "SELECT relreplident = 'f' FROM pg_class WHERE oid = $1", origOID).Scan(&full); err != nil {
		return fmt.Errorf("create shadow: read the replica identity: %w", err)
	}
	if full {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", shadow))
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("create shadow: copy %s: %w", s, err)
		}
	}
	return nil
}
