package table

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PostgresEnumLabel is one value of an enum type that a column of the
// original or of the shadow holds (directly, in an array, a domain, a range
// or a composite type), as it was before the change capture started.
//
// An enum value renamed while osc runs (ALTER TYPE … RENAME VALUE) breaks
// the copy: rows copied or applied before the rename carry the old label
// wherever the --alter turns the value into something else (text, another
// enum, a USING expression), changes decoded before it carry the old label
// as text, which the type no longer accepts, and a plain ALTER TABLE run
// after it gives the new label. Values only added (ADD VALUE, also BEFORE
// or AFTER, which may renumber the sort orders of the others) keep their
// oid and label, and change nothing osc copied: a value is known by its
// pg_enum oid, which a rename keeps, and its label.
type PostgresEnumLabel struct {
	OID   uint32 `json:"oid"`
	Type  string `json:"type"`
	Label string `json:"label"`
}

// pgEnumLabelsSQL lists the values of the enum types reachable from the
// columns of the relations $1 (regclass texts): through arrays, domains, ranges
// and multiranges, and composite types' attributes.
const pgEnumLabelsSQL = `WITH RECURSIVE ty(oid) AS (
		SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = ANY(ARRAY(SELECT to_regclass(r)::oid FROM unnest($1::text[]) r)) AND a.attnum > 0 AND NOT a.attisdropped
	UNION
		SELECT x.next FROM ty JOIN pg_type t ON t.oid = ty.oid,
		LATERAL (SELECT t.typelem WHERE t.typelem <> 0 AND t.typcategory = 'A'
			UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'
			UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid OR r.rngmultitypid = t.oid
			UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) x(next))
	SELECT e.oid, format_type(e.enumtypid, NULL), e.enumlabel::text FROM ty JOIN pg_enum e ON e.enumtypid = ty.oid ORDER BY e.oid`

// ReadPostgresEnumLabels returns the values of the enum types that the
// columns of the relations rels (quoted names) hold (PostgresEnumLabel),
// ordered by oid; nil when there are none.
func ReadPostgresEnumLabels(ctx context.Context, db PostgresQuerier, rels ...string) ([]PostgresEnumLabel, error) {
	rows, err := db.Query(ctx, pgEnumLabelsSQL, rels)
	if err != nil {
		return nil, fmt.Errorf("read the enum values of the table's columns: %w", err)
	}
	labels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PostgresEnumLabel, error) {
		var l PostgresEnumLabel
		err := r.Scan(&l.OID, &l.Type, &l.Label)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the enum values of the table's columns: %w", err)
	}
	if len(labels) == 0 {
		return nil, nil // as a checkpoint saves none
	}
	return labels, nil
}

// CheckPostgresEnumLabels fails when a value of labels was renamed (or its
// type dropped) since they were read: the rows osc copied and applied
// before then carry the old label (PostgresEnumLabel). Values added since
// are not in labels and pass.
func CheckPostgresEnumLabels(ctx context.Context, db PostgresQuerier, labels []PostgresEnumLabel) error {
	if len(labels) == 0 {
		return nil
	}
	oids := make([]uint32, len(labels))
	for i, l := range labels {
		oids[i] = l.OID
	}
	rows, err := db.Query(ctx, "SELECT oid, enumlabel::text FROM pg_enum WHERE oid = ANY($1::oid[])", oids)
	if err != nil {
		return fmt.Errorf("read the enum values of the table's columns again: %w", err)
	}
	now := map[uint32]string{}
	var oid uint32
	var label string
	if _, err := pgx.ForEachRow(rows, []any{&oid, &label}, func() error {
		now[oid] = label
		return nil
	}); err != nil {
		return fmt.Errorf("read the enum values of the table's columns again: %w", err)
	}
	return pgEnumLabelChanges(labels, now)
}

// pgEnumLabelChanges compares the recorded values with the labels their
// oids have now (missing: the type was dropped).
func pgEnumLabelChanges(labels []PostgresEnumLabel, now map[uint32]string) error {
	var changed []string
	for _, l := range labels {
		switch cur, ok := now[l.OID]; {
		case !ok:
			changed = append(changed, fmt.Sprintf("%s value %s is gone", l.Type, pgLiteral(l.Label)))
		case cur != l.Label:
			changed = append(changed, fmt.Sprintf("%s value %s renamed to %s", l.Type, pgLiteral(l.Label), pgLiteral(cur)))
		}
	}
	if len(changed) == 0 {
		return nil
	}
	slices.Sort(changed)
	return fmt.Errorf("an enum type of the table's columns changed during the migration (%s): the rows osc copied and applied before carry the old value, "+
		"where a plain ALTER TABLE run now gives the new one; run osc again (adding values with ADD VALUE is fine while osc runs, renaming them is not)",
		strings.Join(changed, "; "))
}
