package table

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// mysqlNewUnique returns the shadow's unique index ix, which no unique index
// of the original implies, as a new unique key, or refuses it when the
// original cannot compare its values as the shadow does: a PRIMARY KEY, an
// expression or a prefix part, or a column that the --alter adds or whose
// type or collation it changes, or a generated column.
func mysqlNewUnique(in MySQLPlanInput, ix MySQLIndex, toSource map[string]string) (UniqueKey, error) {
	if ix.Primary {
		return UniqueKey{}, errNewUnique(ix, "it is the PRIMARY KEY")
	}
	u := UniqueKey{Name: ix.Name}
	for j, c := range ix.Columns {
		if c == "" {
			return UniqueKey{}, errNewUnique(ix, "it has an expression part")
		}
		if ix.SubParts[j] != 0 {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("it indexes a prefix of %s", c))
		}
		src, ok := toSource[foldName(c)]
		if !ok {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("its column %s is not a column of the original", c))
		}
		sc := in.Source.Columns[columnIndexFold(in.Source, src)]
		dc := in.Shadow.Columns[columnIndexFold(in.Shadow, c)]
		if sc.Generated || dc.Generated {
			// The shadow computes its value; the applier, which writes the
			// other columns, could not look for the rows holding it.
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("its column %s is generated", c))
		}
		if !in.equalityKept(src) || !strings.EqualFold(sc.ColumnType, dc.ColumnType) ||
			in.SourceCollations[foldName(sc.Name)] != in.ShadowCollations[foldName(dc.Name)] {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("the --alter changes its column %s (%s -> %s)", c, sc.ColumnType, dc.ColumnType))
		}
		u.Columns = append(u.Columns, sc.Name)
		u.Shadow = append(u.Shadow, dc.Name)
		u.Collations = append(u.Collations, in.ShadowCollations[foldName(dc.Name)])
	}
	return u, nil
}

// MySQLDuplicates looks in the original for values that several rows hold
// under one of the plan's new unique keys (a full scan of the table, one
// GROUP BY per key, in a READ COMMITTED read that locks nothing) and returns
// a *DuplicateError naming the first values it finds, or nil.
func MySQLDuplicates(ctx context.Context, db *sql.DB, p *Plan) error {
	from := QuoteMySQL(p.Source.Schema, p.Source.Name)
	for _, u := range p.NewUnique {
		q := duplicateScanQuery(u, from, "", quoteMySQLOne, plainExpr)
		dups, err := mysqlDuplicateRows(ctx, db, len(u.Columns), q)
		if err != nil {
			return fmt.Errorf("look for duplicates of the new unique key %s in %s: %w", u.Describe(), from, err)
		}
		if len(dups) > 0 {
			return &DuplicateError{Key: u, Duplicates: dups, When: "before the copy"}
		}
	}
	return nil
}

func quoteMySQLOne(s string) string { return QuoteMySQL(s) }

func plainExpr(s string) string { return s }

// mysqlDuplicateRows runs a query selecting n values and a count and returns
// its rows as duplicates.
func mysqlDuplicateRows(ctx context.Context, db *sql.DB, n int, query string, args ...any) ([]Duplicate, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dups, err := scanDuplicates(rows, n)
	if err != nil {
		return nil, err
	}
	return dups, rows.Err()
}
