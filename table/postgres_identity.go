package table

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgIdentity is an identity column's sequence, on the original and on the
// shadow.
type pgIdentity struct {
	column       string
	orig, shadow string // sequences, as regclass text
	lastValue    int64
	isCalled     bool
	origType     string
}

// pgPrepareIdentity makes the identity sequences LIKE gave the shadow like
// the original's before the --alter runs: LIKE creates them as bigint (with
// the original's limits), so ALTER COLUMN … TYPE would not widen a smallint
// identity's MAXVALUE as it does on the original, and the new table's
// sequence would change type. It also sets each to the original's position,
// which tells afterwards (pgRestartedIdentity) whether the --alter restarted
// it. It returns the sequences as they were set.
func pgPrepareIdentity(ctx context.Context, tx pgx.Tx, origOID, shadowOID uint32) ([]pgIdentity, error) {
	rows, err := tx.Query(ctx, `SELECT a.attname::text, pg_get_serial_sequence(format('%s', a.attrelid::regclass), a.attname),
			pg_get_serial_sequence(format('%s', $2::oid::regclass), a.attname)
		FROM pg_attribute a WHERE a.attrelid = $1 AND a.attidentity <> '' AND NOT a.attisdropped ORDER BY a.attnum`, origOID, shadowOID)
	if err != nil {
		return nil, fmt.Errorf("create shadow: read identity sequences: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgIdentity, error) {
		var id pgIdentity
		return id, r.Scan(&id.column, &id.orig, &id.shadow)
	})
	if err != nil {
		return nil, fmt.Errorf("create shadow: read identity sequences: %w", err)
	}
	for i := range ids {
		id := &ids[i]
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT s.last_value, s.is_called, (SELECT seqtypid::regtype::text FROM pg_sequence WHERE seqrelid = $1::regclass)
			FROM %s s`, id.orig), id.orig).Scan(&id.lastValue, &id.isCalled, &id.origType); err != nil {
			return nil, fmt.Errorf("create shadow: read sequence %s: %w", id.orig, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER SEQUENCE %s AS %s", id.shadow, id.origType)); err != nil {
			return nil, fmt.Errorf("create shadow: sequence %s: %w", id.shadow, err)
		}
		if _, err := tx.Exec(ctx, "SELECT setval($1::regclass, $2, $3)", id.shadow, id.lastValue, id.isCalled); err != nil {
			return nil, fmt.Errorf("create shadow: sequence %s: %w", id.shadow, err)
		}
	}
	return ids, nil
}

// pgRestartedIdentity returns the shadow's identity columns whose sequence
// the --alter restarted (RESTART): the cut-over leaves their position as the
// --alter set it instead of carrying the original's over.
func pgRestartedIdentity(ctx context.Context, tx pgx.Tx, shadowOID uint32, ids []pgIdentity) ([]string, error) {
	var out []string
	for _, id := range ids {
		// The sequence may be gone with its column or its identity, or
		// belong to the column under a new name.
		var column string
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT a.attname::text FROM pg_depend d
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass($1) AND d.refobjid = $2 AND d.deptype = 'i'), '')`,
			id.shadow, shadowOID).Scan(&column); err != nil {
			return nil, fmt.Errorf("create shadow: read sequence %s: %w", id.shadow, err)
		}
		if column == "" {
			continue
		}
		var last int64
		var called bool
		if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+id.shadow).Scan(&last, &called); err != nil {
			return nil, fmt.Errorf("create shadow: read sequence %s: %w", id.shadow, err)
		}
		if last != id.lastValue || called != id.isCalled {
			out = append(out, column)
		}
	}
	return out, nil
}
