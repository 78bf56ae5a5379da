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
//
// A value renamed and renamed back has its label again, but the rows osc
// copied or applied in between carry the other one. Its pg_enum row then
// has a new xmin (the transaction that wrote it last) and its sort order
// unchanged: the only other writer of an existing value's row is the
// renumbering of ADD VALUE BEFORE or AFTER, which changes the sort order
// (so a value renumbered too, besides renamed and back, is not told apart).
// Order and XMin are 0 in a checkpoint saved before they were read (no
// such check).
type PostgresEnumLabel struct {
	OID   uint32  `json:"oid"`
	Type  string  `json:"type"`
	Label string  `json:"label"`
	Order float32 `json:"order,omitempty"`
	XMin  uint32  `json:"xmin,omitempty"`
}

// pgEnumValue is a value's pg_enum row as read again (CheckPostgresEnumLabels).
type pgEnumValue struct {
	label string
	order float32
	xmin  uint32
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
	SELECT e.oid, format_type(e.enumtypid, NULL), e.enumlabel::text, e.enumsortorder, e.xmin::text::int8 FROM ty JOIN pg_enum e ON e.enumtypid = ty.oid ORDER BY e.oid`

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
		err := r.Scan(&l.OID, &l.Type, &l.Label, &l.Order, &l.XMin)
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

// CheckPostgresEnumLabels fails when a value of labels was renamed (also
// renamed back) or its type dropped since they were read: the rows osc
// copied and applied before then, or in between, carry another label
// (PostgresEnumLabel). Values added since are not in labels and pass.
func CheckPostgresEnumLabels(ctx context.Context, db PostgresQuerier, labels []PostgresEnumLabel) error {
	if len(labels) == 0 {
		return nil
	}
	oids := make([]uint32, len(labels))
	for i, l := range labels {
		oids[i] = l.OID
	}
	rows, err := db.Query(ctx, "SELECT oid, enumlabel::text, enumsortorder, xmin::text::int8 FROM pg_enum WHERE oid = ANY($1::oid[])", oids)
	if err != nil {
		return fmt.Errorf("read the enum values of the table's columns again: %w", err)
	}
	now := map[uint32]pgEnumValue{}
	var (
		oid uint32
		v   pgEnumValue
	)
	if _, err := pgx.ForEachRow(rows, []any{&oid, &v.label, &v.order, &v.xmin}, func() error {
		now[oid] = v
		return nil
	}); err != nil {
		return fmt.Errorf("read the enum values of the table's columns again: %w", err)
	}
	return pgEnumLabelChanges(labels, now)
}

// pgEnumLabelChanges compares the recorded values with their oids' rows
// now (missing: the type was dropped).
func pgEnumLabelChanges(labels []PostgresEnumLabel, now map[uint32]pgEnumValue) error {
	var changed []string
	for _, l := range labels {
		switch cur, ok := now[l.OID]; {
		case !ok:
			changed = append(changed, fmt.Sprintf("%s value %s is gone", l.Type, pgLiteral(l.Label)))
		case cur.label != l.Label:
			changed = append(changed, fmt.Sprintf("%s value %s renamed to %s", l.Type, pgLiteral(l.Label), pgLiteral(cur.label)))
		case l.XMin != 0 && cur.xmin != l.XMin && cur.order == l.Order:
			changed = append(changed, fmt.Sprintf("%s value %s renamed and renamed back", l.Type, pgLiteral(l.Label)))
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
