package copier

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// checkUnique runs, in the chunk's transaction after its insert, the check
// of the plan's new unique keys: a row of the chunk that holds a value a
// shadow row of another key holds under a new unique key was skipped by the
// insert (ON DUPLICATE KEY UPDATE k = k), or met a row the applier wrote;
// the original is asked whether the two rows hold the value now, and the
// chunk fails with a *table.DuplicateError if they do. Otherwise one of
// them is not the original's latest, and the change that made it so is
// still to be applied and writes the row whole (README, "Why nothing is
// lost", step 5). Each pair is found through the shadow's index of the key.
func (c *MySQL) checkUnique(ctx context.Context, tx *sql.Tx, conds []string, args []any, after []any) error {
	if c.unique == nil {
		return nil
	}
	src, dst := c.sql.Key.Select(), c.sql.ShadowKey.Select()
	n := len(src)
	for _, u := range c.unique.Keys() {
		inner := make([]string, 0, n+len(u.Columns))
		for i, e := range src {
			inner = append(inner, fmt.Sprintf("%s AS osc_k%d", e, i))
		}
		on := make([]string, len(u.Columns))
		for j, col := range u.Columns {
			inner = append(inner, fmt.Sprintf("%s AS osc_u%d", table.QuoteMySQL(col), j))
			on[j] = fmt.Sprintf("%s.%s = o.osc_u%d", c.sql.Shadow, table.QuoteMySQL(u.Shadow[j]), j)
		}
		same := make([]string, n)
		sel := make([]string, 0, 2*n)
		for i, e := range dst {
			same[i] = fmt.Sprintf("%s <=> o.osc_k%d", e, i)
			sel = append(sel, e)
		}
		for i := range n {
			sel = append(sel, fmt.Sprintf("o.osc_k%d", i))
		}
		q := "SELECT " + strings.Join(inner, ", ") + " " + c.sql.From
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		q = "SELECT " + strings.Join(sel, ", ") + " FROM (" + q + ") AS o JOIN " + c.sql.Shadow +
			" ON " + strings.Join(on, " AND ") + " WHERE NOT (" + strings.Join(same, " AND ") + ")"
		keys, err := clashKeys(ctx, tx, q, args, n)
		if err != nil {
			return fmt.Errorf("copy chunk: find clashes under the new unique key %s: %w", u.Describe(), err)
		}
		if len(keys) == 0 {
			continue
		}
		if err := c.unique.Check(ctx, tx, keys, chunkName(after)); err != nil {
			return err
		}
	}
	return nil
}

// clashKeys runs q, which selects two keys of n columns a row, as a prepared
// statement (whose binary results keep each value's type for the next
// query's arguments), and returns every key it names.
func clashKeys(ctx context.Context, tx *sql.Tx, q string, args []any, n int) ([][]any, error) {
	st, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys [][]any
	for rows.Next() {
		vals := make([]any, 2*n)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		keys = append(keys, vals[:n], vals[n:])
	}
	return keys, rows.Err()
}
