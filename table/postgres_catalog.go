package table

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgColumn is a column with the catalog facts the plan needs.
type pgColumn struct {
	Column
	Num        int16 // attnum
	Identity   bool
	HasDefault bool
	// Missing: the column has a missing value (atthasmissing), the one its
	// ADD COLUMN's non-volatile DEFAULT gave the rows that existed then;
	// Default is that DEFAULT's expression.
	Missing bool
	Default string
	// Collation is the column's collation (0: none); Deterministic: it
	// compares equal only equal strings (a nondeterministic ICU collation,
	// case-insensitive say, does not).
	Collation     uint32
	Deterministic bool
}

func pgReadColumns(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgColumn, error) {
	rows, err := q.Query(ctx, `SELECT a.attnum, a.attname, format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod),
		NOT a.attnotnull, a.attgenerated <> '', a.attidentity <> '', a.atthasdef, a.atthasmissing,
		coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attcollation,
		coalesce((SELECT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation), true)
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgColumn, error) {
		var c pgColumn
		err := r.Scan(&c.Num, &c.Name, &c.DataType, &c.ColumnType, &c.Nullable, &c.Generated, &c.Identity, &c.HasDefault, &c.Missing, &c.Default,
			&c.Collation, &c.Deterministic)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	return cols, nil
}

func pgTable(schema, name string, cols []pgColumn) *Table {
	t := &Table{Schema: schema, Name: name}
	for _, c := range cols {
		t.Columns = append(t.Columns, c.Column)
	}
	return t
}

// pgIndex is one index as pg_index describes it.
type pgIndex struct {
	Name                                                   string
	Primary, Unique, Exclusion, Immediate, Valid, NullsNot bool // NullsNot: NULLS NOT DISTINCT
	Columns                                                []string
	Include                                                []string
	Exprs, Pred                                            string
	Method                                                 string
	OpClasses, Options, Collations                         string
	ConstraintDef                                          string // the exclusion constraint
}

func pgReadIndexes(ctx context.Context, q PostgresQuerier, oid uint32, version int) ([]pgIndex, error) {
	nullsNot := "false"
	if version >= 150000 {
		nullsNot = "i.indnullsnotdistinct"
	}
	rows, err := q.Query(ctx, `SELECT c.relname, i.indisprimary, i.indisunique, i.indisexclusion, i.indimmediate,
		i.indisvalid AND i.indisready AND i.indislive, `+nullsNot+`, i.indnkeyatts::int,
		ARRAY(SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
			LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord),
		coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
		am.amname, i.indclass::text, i.indoption::text, i.indcollation::text,
		coalesce((SELECT pg_get_constraintdef(con.oid) FROM pg_constraint con
			WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype = 'x' LIMIT 1), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		WHERE i.indrelid = $1 ORDER BY c.relname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgIndex, error) {
		var ix pgIndex
		var nkey int
		var all []string
		err := r.Scan(&ix.Name, &ix.Primary, &ix.Unique, &ix.Exclusion, &ix.Immediate, &ix.Valid, &ix.NullsNot, &nkey,
			&all, &ix.Exprs, &ix.Pred, &ix.Method, &ix.OpClasses, &ix.Options, &ix.Collations, &ix.ConstraintDef)
		if nkey > len(all) {
			nkey = len(all)
		}
		ix.Columns, ix.Include = all[:nkey], all[nkey:]
		return ix, err
	})
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	return idx, nil
}

// keyUsable reports whether the index identifies rows and can be an ON
// CONFLICT arbiter: valid, unique, not deferrable, no expression, not
// partial, over NOT NULL columns.
func (ix pgIndex) keyUsable(cols []pgColumn) bool {
	if !ix.Valid || !ix.Unique || !ix.Immediate || ix.Exprs != "" || ix.Pred != "" || len(ix.Columns) == 0 {
		return false
	}
	for _, name := range ix.Columns {
		c := pgFindColumn(cols, name)
		if c == nil || c.Nullable {
			return false
		}
	}
	return true
}

// unusable is why a unique index (a primary key too) is not keyUsable, ""
// when it is, or is not unique.
func (ix pgIndex) unusable(cols []pgColumn) string {
	if !ix.Unique || ix.keyUsable(cols) {
		return ""
	}
	var why []string
	if !ix.Valid {
		why = append(why, "is not valid")
	}
	if !ix.Immediate {
		why = append(why, "is DEFERRABLE (ON CONFLICT cannot use it)")
	}
	if ix.Exprs != "" {
		why = append(why, "has an expression")
	}
	if ix.Pred != "" {
		why = append(why, "is partial")
	}
	for _, name := range ix.Columns {
		if c := pgFindColumn(cols, name); c != nil && c.Nullable {
			why = append(why, "column "+name+" allows NULL")
		}
	}
	return ix.describe() + " " + strings.Join(why, ", ")
}

func (ix pgIndex) describe() string {
	kind := "unique index"
	switch {
	case ix.Primary:
		kind = "primary key"
	case ix.Exclusion:
		kind = "exclusion constraint"
	case !ix.Unique:
		kind = "index"
	}
	cols := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		if c == "" {
			c = "<expression>"
		}
		cols[i] = c
	}
	s := fmt.Sprintf("%s %s (%s)", kind, ix.Name, strings.Join(cols, ", "))
	if ix.Pred != "" {
		s += " WHERE " + ix.Pred
	}
	return s
}

// signature describes the index with its column names passed through rename;
// ok is false when a column has no name under rename. strict adds operator
// classes, options and collations, which change with a column's type.
func (ix pgIndex) signature(rename func(string) (string, bool), strict bool) (string, bool) {
	mapCols := func(cols []string) (string, bool) {
		out := make([]string, len(cols))
		for i, c := range cols {
			if c == "" {
				continue
			}
			n, ok := rename(c)
			if !ok {
				return "", false
			}
			out[i] = n
		}
		return strings.Join(out, ","), true
	}
	key, ok := mapCols(ix.Columns)
	if !ok {
		return "", false
	}
	inc, ok := mapCols(ix.Include)
	if !ok {
		return "", false
	}
	parts := []string{ix.Method, fmt.Sprint(ix.Primary, ix.Unique, ix.Exclusion, ix.NullsNot), key, inc, ix.Exprs, ix.Pred}
	if strict {
		parts = append(parts, ix.OpClasses, ix.Options, ix.Collations, ix.ConstraintDef)
	}
	return strings.Join(parts, "\x00"), true
}

func pgFindColumn(cols []pgColumn, name string) *pgColumn {
	for i := range cols {
		if cols[i].Name == name {
			return &cols[i]
		}
	}
	return nil
}

// pgStrings runs a query returning one text column.
func pgStrings(ctx context.Context, q PostgresQuerier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

type pgForeignKey struct {
	PostgresForeignKey
	ReferencesOID uint32 // confrelid
}

// pgReadForeignKeys reads the table's foreign keys (its own constraints, not
// those of partitions), with NOT VALID cut off the definition.
func pgReadForeignKeys(ctx context.Context, q PostgresQuerier, oid uint32) ([]pgForeignKey, error) {
	rows, err := q.Query(ctx, `SELECT conname, pg_get_constraintdef(oid), convalidated, confrelid, confrelid::regclass::text,
			coalesce(quote_literal(obj_description(oid, 'pg_constraint')), '')
		FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND conparentid = 0 ORDER BY conname`, oid)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgForeignKey, error) {
		var fk pgForeignKey
		err := r.Scan(&fk.Name, &fk.Definition, &fk.Validate, &fk.ReferencesOID, &fk.References, &fk.Comment)
		fk.Definition = strings.TrimSuffix(fk.Definition, " NOT VALID")
		return fk, err
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	return fks, nil
}
