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
// is asked, in the batch's transaction before its writes and in one
// statement, whether any two of the rows the batch writes and the shadow rows
// that hold their values (read through the shadow's index of the key) hold
// one value now; the batch fails with a *table.DuplicateError if they do.
// Otherwise the clash is with a row older or newer than the original's,
// which a later change writes again whole, or between rows of the batch in
// their commit order.
type myUnique struct {
	check *table.MySQLUniqueCheck
	// cols holds, per new unique key, the positions in MySQL.cols of its
	// columns.
	cols [][]int
	// key holds the positions in MySQL.cols of the original's key columns
	// (Plan.Key), by which the check asks the original: not the shadow's
	// (Plan.Identity), which is wider when the --alter widens the key.
	key []int
}

// newMyUnique returns the check of the plan's new unique keys, or nil when
// it has none.
func newMyUnique(db *sql.DB, plan *table.Plan) (*myUnique, error) {
	if len(plan.NewUnique) == 0 {
		return nil, nil
	}
	cp, err := table.NewMySQLCopy(plan)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	u := &myUnique{check: table.NewMySQLUniqueCheck(db, cp, plan)}
	for n, i := range plan.KeyIndex {
		pos := -1
		for j, m := range plan.Mapping {
			if m.SourceIndex == i {
				pos = j
			}
		}
		if pos < 0 {
			return nil, fmt.Errorf("apply: key column %s is not copied", plan.Key[n])
		}
		u.key = append(u.key, pos)
	}
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

// myUniqueRows bounds the rows one check names; it is padded to a power of
// two (repeating its last row), so that few statement shapes are prepared.
const myUniqueRows = 128

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
	var written []myOp
	for _, o := range ops {
		if !o.del {
			written = append(written, o)
		}
	}
	for start := 0; start < len(written); start += myUniqueRows {
		part := written[start:min(len(written), start+myUniqueRows)]
		keys := make([][]any, len(part))
		for r, o := range part {
			keys[r] = make([]any, len(u.key))
			for i, p := range u.key {
				v, err := conv(o, a.cols[p])
				if err != nil {
					return err
				}
				keys[r][i] = v
			}
		}
		for k, pos := range u.cols {
			// The shadow rows holding a value the part writes: a
			// NULL duplicates nothing.
			var terms []string
			var args []any
		rows:
			for _, o := range part {
				t := make([]string, len(pos))
				var targs []any
				for i, p := range pos {
					c := a.cols[p]
					v, err := conv(o, c)
					if err != nil {
						return err
					}
					if v == nil {
						continue rows
					}
					t[i] = "d." + c.name + " = " + c.param
					for range strings.Count(c.param, "?") {
						targs = append(targs, v)
					}
				}
				terms, args = append(terms, "("+strings.Join(t, " AND ")+")"), append(args, targs...)
			}
			cond := ""
			if len(terms) > 0 {
				n := len(args) / len(terms)
				for len(terms)&(len(terms)-1) != 0 {
					terms, args = append(terms, terms[len(terms)-1]), append(args, args[len(args)-n:]...)
				}
				cond = strings.Join(terms, " OR ")
			}
			padded := keys
			for len(padded)&(len(padded)-1) != 0 {
				padded = append(padded, padded[len(padded)-1])
			}
			if err := u.check.BatchCheck(ctx, tx, k, padded, cond, args, "applying captured changes"); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
	}
	return nil
}
