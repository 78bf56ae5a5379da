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
// type or collation it changes.
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
		if !in.equalityKept(src) || !strings.EqualFold(sc.ColumnType, dc.ColumnType) ||
			in.SourceCollations[foldName(sc.Name)] != in.ShadowCollations[foldName(dc.Name)] {
			return UniqueKey{}, errNewUnique(ix, fmt.Sprintf("the --alter changes its column %s (%s -> %s)", c, sc.ColumnType, dc.ColumnType))
		}
		u.Columns = append(u.Columns, sc.Name)
		u.Shadow = append(u.Shadow, dc.Name)
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
		q := duplicateScanQuery(u, from, "", func(c string) string { return QuoteMySQL(c) }, func(c string) string { return c })
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

// mysqlQuerier runs a query: a *sql.DB, *sql.Conn or *sql.Tx.
type mysqlQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// mysqlDuplicateRows runs a query selecting n values and a count and returns
// its rows as duplicates.
func mysqlDuplicateRows(ctx context.Context, q mysqlQuerier, n int, query string, args ...any) ([]Duplicate, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanDuplicates(rows, n)
}

// MySQLUniqueCheck asks the original, at a clash under a new unique key,
// whether rows it holds now duplicate each other: the rows with the keys
// given (values of the plan's key, in the copy's parameter forms), grouped by
// each new unique key. A clash the original does not hold now is a shadow
// row older or newer than the original's (README, "Why nothing is lost",
// step 5), which a later change writes again.
type MySQLUniqueCheck struct {
	keys []UniqueKey
	from string // the original, quoted
	key  MySQLKeyRange
}

// NewMySQLUniqueCheck returns the check for the plan's new unique keys, or
// nil when it has none.
func NewMySQLUniqueCheck(c *MySQLCopy, p *Plan) *MySQLUniqueCheck {
	if len(p.NewUnique) == 0 {
		return nil
	}
	return &MySQLUniqueCheck{keys: p.NewUnique, from: QuoteMySQL(p.Source.Schema, p.Source.Name), key: c.Key}
}

// mysqlUniqueKeysPerCheck bounds the keys one check's statement names.
const mysqlUniqueKeysPerCheck = 256

// Check fails with a *DuplicateError (when: where the clash was met) if two
// of the rows with the given keys hold one value of a new unique key now. It
// reads in q (the caller's transaction), each statement its own snapshot.
func (c *MySQLUniqueCheck) Check(ctx context.Context, q mysqlQuerier, keys [][]any, when string) error {
	for start := 0; start < len(keys); start += mysqlUniqueKeysPerCheck {
		part := keys[start:min(len(keys), start+mysqlUniqueKeysPerCheck)]
		terms := make([]string, len(part))
		var args []any
		for i, k := range part {
			t := make([]string, len(c.key.cols))
			for j, col := range c.key.cols {
				t[j] = col.name + " = " + col.param
			}
			terms[i] = "(" + strings.Join(t, " AND ") + ")"
			args = append(args, k...)
		}
		where := strings.Join(terms, " OR ")
		for _, u := range c.keys {
			query := duplicateScanQuery(u, c.from, where, func(s string) string { return QuoteMySQL(s) }, func(s string) string { return s })
			dups, err := mysqlDuplicateRows(ctx, q, len(u.Columns), query, args...)
			if err != nil {
				return fmt.Errorf("ask the original about a clash under the new unique key %s: %w", u.Describe(), err)
			}
			if len(dups) > 0 {
				return &DuplicateError{Key: u, Duplicates: dups, When: when}
			}
		}
	}
	return nil
}

// Keys are the plan's new unique keys.
func (c *MySQLUniqueCheck) Keys() []UniqueKey { return c.keys }
