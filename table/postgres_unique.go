package table

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgNewUnique returns the shadow's unique index u, which no unique index of
// the original implies, as a new unique key, when the original can compare
// its values as the shadow does (see UniqueKey): an immediate, valid UNIQUE
// index or constraint, not the primary key, without expressions or a
// predicate, over columns of the original that the --alter leaves as they
// are (unchanged); its INCLUDE columns do not matter. It refuses one with
// NULLS NOT DISTINCT: the applier's clash resolution compares values by SQL
// equality, under which NULLs never clash (see apply/postgres_clash.go), so
// a NULL passed from one row to another could fail the run.
func pgNewUnique(u pgIndex, toSource map[string]string, unchanged func(string) bool) (UniqueKey, bool, error) {
	if !u.Unique || u.Exclusion || u.Primary || !u.Immediate || !u.Valid || u.Exprs != "" || u.Pred != "" {
		return UniqueKey{}, false, nil
	}
	nu := UniqueKey{Name: u.Name}
	for _, c := range u.Columns {
		if c == "" || !unchanged(c) {
			return UniqueKey{}, false, nil
		}
		nu.Columns = append(nu.Columns, toSource[c])
		nu.Shadow = append(nu.Shadow, c)
	}
	if u.NullsNot {
		return UniqueKey{}, false, fmt.Errorf("the shadow table would have %s NULLS NOT DISTINCT, which the original does not guarantee: "+
			"osc adds a new unique key, setting aside the rows that clash under it, only with NULLs distinct (the default); "+
			"add this one with a plain ALTER TABLE, or afterwards with CREATE UNIQUE INDEX CONCURRENTLY … NULLS NOT DISTINCT", u.describe())
	}
	return nu, true, nil
}

// pgQuoteIdent quotes one identifier.
func pgQuoteIdent(c string) string { return pgx.Identifier{c}.Sanitize() }

// pgText renders a quoted column as text.
func pgText(c string) string { return c + "::text" }

// PostgresDuplicates looks in the original for values that several rows hold
// under one of the plan's new unique keys (a full scan of the table, one
// GROUP BY per key, which locks nothing but the table's ACCESS SHARE) and
// returns a *DuplicateError naming the first values it finds, or nil.
func PostgresDuplicates(ctx context.Context, q PostgresQuerier, p *Plan) error {
	from := QuotePostgres(p.Source.Schema, p.Source.Name)
	for _, u := range p.NewUnique {
		dups, err := pgDuplicateRows(ctx, q, len(u.Columns), duplicateScanQuery(u, from, "", pgQuoteIdent, pgText))
		if err != nil {
			return fmt.Errorf("look for duplicates of the new unique key %s in %s: %w", u.Describe(), from, err)
		}
		if len(dups) > 0 {
			return &DuplicateError{Key: u, Duplicates: dups, When: "before the copy"}
		}
	}
	return nil
}

// pgDuplicateRows runs a query selecting n texts and a count and returns its
// rows as duplicates.
func pgDuplicateRows(ctx context.Context, q PostgresQuerier, n int, query string, args ...any) ([]Duplicate, error) {
	rows, err := q.Query(ctx, query, args...)
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
