package apply

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// myUnique checks, before a batch is written, the clashes its rows could
// meet under the plan's new unique keys: REPLACE deletes a shadow row of
// another key that holds a value a written row holds, as it must under the
// original's own unique keys (README, "Why nothing is lost", step 5), but
// under a new one the two rows may both be the original's. So the original
// is asked, in the batch's transaction before its writes, whether any two of
// the rows the batch writes and the shadow rows that hold their values (read
// through the shadow's index of the key) hold one value now; the batch
// fails with a *table.DuplicateError if they do. Otherwise the clash is
// with a row older or newer than the original's, which a later change
// writes again whole, or between rows of the batch in their commit order.
type myUnique struct {
	check  *table.MySQLUniqueCheck
	shadow string
	// cols holds, per new unique key, the positions in MySQL.cols of its
	// columns.
	cols [][]int
}

// newMyUnique returns the check of the plan's new unique keys, or nil when
// it has none.
func newMyUnique(plan *table.Plan, shadow string) (*myUnique, error) {
	if len(plan.NewUnique) == 0 {
		return nil, nil
	}
	cp, err := table.NewMySQLCopy(plan)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	u := &myUnique{check: table.NewMySQLUniqueCheck(cp, plan), shadow: shadow}
	for _, k := range plan.NewUnique {
		pos := make([]int, len(k.Columns))
		for i, c := range k.Columns {
			pos[i] = -1
			for j, m := range plan.Mapping {
				if m.Source == c {
					pos[i] = j
				}
			}
			if pos[i] < 0 {
				return nil, fmt.Errorf("apply: column %s of the new unique key %s is not copied", c, k.Describe())
			}
		}
		u.cols = append(u.cols, pos)
	}
	return u, nil
}

// myUniqueTerms bounds the rows one look-up in the shadow names.
const myUniqueTerms = 256

// checkUnique checks the rows the ops write (see myUnique), in tx.
func (a *MySQL) checkUnique(ctx context.Context, tx *sql.Tx, ops []myOp) error {
	u := a.unique
	if u == nil {
		return nil
	}
	conv := func(o myOp, c mysqlColumn) (any, error) {
		if c.index >= len(o.row) {
			return nil, fmt.Errorf("apply: row image has %d columns, want column %d", len(o.row), c.index+1)
		}
		v := o.row[c.index]
		if v == nil {
			return nil, nil
		}
		return c.conv(v)
	}
	var keys [][]any
	var written []myOp
	for _, o := range ops {
		if o.del {
			continue
		}
		k := make([]any, len(a.keys))
		for i, c := range a.keys {
			v, err := conv(o, c)
			if err != nil {
				return err
			}
			k[i] = v
		}
		keys, written = append(keys, k), append(written, o)
	}
	if len(written) == 0 {
		return nil
	}
	sel := make([]string, len(a.keys))
	for i, c := range a.keys {
		sel[i] = c.name
	}
	for _, pos := range u.cols {
		var terms []string
		var args []any
		look := func() error {
			if len(terms) == 0 {
				return nil
			}
			q := "SELECT " + strings.Join(sel, ", ") + " FROM " + u.shadow + " WHERE " + strings.Join(terms, " OR ")
			found, err := myQueryRows(ctx, tx, q, args, len(sel))
			if err != nil {
				return fmt.Errorf("apply: look up clashes under a new unique key: %w", err)
			}
			keys = append(keys, found...)
			terms, args = terms[:0], args[:0]
			return nil
		}
	rows:
		for _, o := range written {
			t := make([]string, len(pos))
			var targs []any
			for i, p := range pos {
				c := a.cols[p]
				v, err := conv(o, c)
				if err != nil {
					return err
				}
				if v == nil {
					continue rows // a NULL duplicates nothing
				}
				t[i] = c.name + " = " + c.param
				for range strings.Count(c.param, "?") {
					targs = append(targs, v)
				}
			}
			terms, args = append(terms, "("+strings.Join(t, " AND ")+")"), append(args, targs...)
			if len(terms) == myUniqueTerms {
				if err := look(); err != nil {
					return err
				}
			}
		}
		if err := look(); err != nil {
			return err
		}
	}
	if err := u.check.Check(ctx, tx, keys, "applying captured changes"); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// myQueryRows runs q and returns its rows of n values.
func myQueryRows(ctx context.Context, tx *sql.Tx, q string, args []any, n int) ([][]any, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
