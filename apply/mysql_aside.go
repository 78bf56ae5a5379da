package apply

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// myAside keeps aside the rows that the plan's new unique keys turn away
// (table.MySQLAside; README, "Why nothing is lost", step 5). A REPLACE
// deletes every shadow row of another key that holds a value it writes in a
// unique index: under the original's own unique keys that row is older than
// the original's and a later change writes it again, but under a new one the
// two rows may both be the original's (for a moment or for good), so the
// row goes aside instead, in the batch's transaction, server-side, and comes
// back when Restore finds it fits. Every key the batch writes or deletes
// leaves the aside table, where the shadow and the aside table together are
// what the shadow alone was: a key is in at most one of them.
type myAside struct {
	t *table.MySQLAside
	// uniq holds, per new unique key, the positions in MySQL.cols of its
	// columns; same, per key and column, the condition that the column
	// holds the value its parameter writes, compared under the column's
	// collation as the index compares (a text written through CONVERT …
	// USING carries the character set's default collation, an ENUM's
	// label the connection's).
	uniq [][]int
	same [][]string
	// candidates copies the shadow rows that match the condition appended
	// to it into the aside table (a row already there is left as it is).
	candidates, candidatesTail string
	replaceHead                string // REPLACE INTO aside (cols) VALUES
	deleteHead                 string // DELETE FROM aside WHERE
	countHead                  string // SELECT COUNT(*) FROM shadow WHERE
	restore                    string // INSERT INTO shadow … SELECT … FROM aside, skipping clashes
}

// myAsideRows bounds the written rows whose values one statement looks
// for in the shadow.
const myAsideRows = 128

// newMyAside returns the aside handling of the plan's new unique keys, or
// nil when it has none; cols are the applier's columns, in Plan.Mapping's
// order.
func newMyAside(plan *table.Plan, cols []mysqlColumn) (*myAside, error) {
	t, err := table.NewMySQLAside(plan)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if t == nil {
		return nil, nil
	}
	x := &myAside{t: t}
	for _, k := range plan.NewUnique {
		pos := make([]int, len(k.Columns))
		same := make([]string, len(k.Columns))
		for i, c := range k.Columns {
			pos[i] = -1
			for j, m := range plan.Mapping {
				if m.Source == c && j < len(cols) {
					pos[i] = j
				}
			}
			if pos[i] < 0 {
				return nil, fmt.Errorf("apply: column %s of the new unique key %s is not copied", c, k.Describe())
			}
			same[i] = cols[pos[i]].name + " = " + cols[pos[i]].param
			cs := ""
			if d := plan.Shadow.ColumnIndex(plan.Mapping[pos[i]].Shadow); d >= 0 {
				cs = strings.ToLower(plan.Shadow.Columns[d].Charset)
			}
			if i < len(k.Collations) && k.Collations[i] != "" && cs != "" && cs != "binary" {
				// Converted to the column's character set first: an ENUM's
				// or a SET's label is written as the connection's text.
				if !myCharsetName.MatchString(k.Collations[i]) || !myCharsetName.MatchString(cs) {
					return nil, fmt.Errorf("apply: column %s of the new unique key %s: unexpected collation %q (%q)", c, k.Describe(), k.Collations[i], cs)
				}
				same[i] = cols[pos[i]].name + " = CONVERT(" + cols[pos[i]].param + " USING " + cs + ") COLLATE " + k.Collations[i]
			}
		}
		x.uniq, x.same = append(x.uniq, pos), append(x.same, same)
	}
	list := strings.Join(t.Columns, ", ")
	x.candidates = "INSERT INTO " + t.Table + " (" + list + ") SELECT " + list + " FROM " + t.Shadow + " WHERE "
	x.candidatesTail = " ON DUPLICATE KEY UPDATE " + t.Table + "." + t.Keys[0] + " = " + t.Table + "." + t.Keys[0]
	x.replaceHead = "REPLACE INTO " + t.Table + " (" + list + ") VALUES "
	x.deleteHead = "DELETE FROM " + t.Table + " WHERE "
	x.countHead = "SELECT COUNT(*) FROM " + t.Shadow + " WHERE "
	x.restore = "INSERT INTO " + t.Shadow + " (" + list + ") SELECT " + list + " FROM " + t.Table +
		" ON DUPLICATE KEY UPDATE " + t.Shadow + "." + t.Keys[0] + " = " + t.Shadow + "." + t.Keys[0]
	return x, nil
}

// UseAside makes the applier share t, the aside table of its plan, with
// the copy, so that both know when no row is aside.
func (a *MySQL) UseAside(t *table.MySQLAside) {
	if a.aside != nil && t != nil {
		a.aside.t = t
	}
}

// asideBefore runs, in the batch's transaction before its writes, the
// first steps of myAside: it copies into the aside table the shadow rows
// that hold, under a new unique key, a value a row of the batch writes
// (compared by the shadow, with the expression the REPLACE writes: as the
// index compares), then removes from it every key the batch writes or
// deletes (the copies of rows the batch writes again or deletes among
// them). It returns how many rows it copied and how many it removed.
func (a *MySQL) asideBefore(ctx context.Context, tx *sql.Tx, ops []myOp) (put, removed int64, err error) {
	x := a.aside
	put, err = a.asideByValue(ctx, tx, ops, func(cond string) string { return x.candidates + cond + x.candidatesTail })
	if err != nil {
		return 0, 0, err
	}
	if put == 0 && !x.t.MayHoldRows() {
		return 0, 0, nil
	}
	var plain, exact []myOp
	for _, o := range ops {
		k := myOp{del: true, exact: o.del && o.exact, row: o.row}
		if k.exact {
			exact = append(exact, k)
		} else {
			plain = append(plain, k)
		}
	}
	del := func(_, exact bool, n int) string { return x.deleteHead + a.keyCond(exact, n) }
	for _, keys := range [][]myOp{plain, exact} {
		n, err := a.asideRun(ctx, tx, keys, del)
		if err != nil {
			return 0, 0, err
		}
		removed += n
	}
	return put, removed, nil
}

// asideByValue runs, for each new unique key and each myAsideRows of the
// rows the ops write, the statement stmt makes of the condition that a row
// holds, under that key, a value one of those rows writes (asideCond), and
// returns the rows the statements affected.
func (a *MySQL) asideByValue(ctx context.Context, tx *sql.Tx, ops []myOp, stmt func(cond string) string) (int64, error) {
	written := make([]myOp, 0, len(ops))
	for _, o := range ops {
		if !o.del {
			written = append(written, o)
		}
	}
	var affected int64
	for k := range a.aside.uniq {
		for start := 0; start < len(written); start += myAsideRows {
			cond, args, err := a.asideCond(written[start:min(len(written), start+myAsideRows)], k)
			if err != nil {
				return 0, err
			}
			if cond == "" {
				continue
			}
			n, err := a.asideExec(ctx, tx, myBatch{query: stmt(cond), args: args})
			if err != nil {
				return 0, err
			}
			affected += n
		}
	}
	return affected, nil
}

// asideAfter runs, in the batch's transaction after its writes, the last
// steps of myAside: the rows asideBefore copied that are still in the
// shadow (nothing displaced them) leave the aside table; and when a row the
// batch writes last is missing from the shadow (a later row of the batch,
// holding its value under a new unique key, displaced it), the rows the
// batch writes last are written into the aside table as well, by the same
// statements, and those the shadow holds leave it again. It returns whether
// rows may be aside then: held tells whether they might before the batch,
// put and removed are asideBefore's counts. The rows affected tell it
// exactly but when the aside table may have held rows and this batch
// removed some, or rows displaced within the batch were put aside: then it
// looks.
func (a *MySQL) asideAfter(ctx context.Context, tx *sql.Tx, ops []myOp, held bool, put, removed int64) (bool, error) {
	x := a.aside
	net := put - removed
	if put > 0 {
		n, err := a.asideByValue(ctx, tx, ops, func(cond string) string { return x.deleteHead + "(" + cond + ") AND " + x.t.InShadow() })
		if err != nil {
			return false, err
		}
		net -= n
	}
	last := a.writtenLast(ops)
	displaced := false
	if len(last) > 1 {
		keys := make([]myOp, len(last))
		for i, o := range last {
			keys[i] = myOp{del: true, row: o.row}
		}
		counts, err := a.batchesWith(keys, func(_, _ bool, n int) string { return x.countHead + a.keyCond(false, n) })
		if err != nil {
			return false, err
		}
		for _, b := range counts {
			st, err := a.stmt(ctx, b.query)
			if err != nil {
				return false, err
			}
			var n int
			if err := tx.StmtContext(ctx, st).QueryRowContext(ctx, b.args...).Scan(&n); err != nil {
				return false, fmt.Errorf("apply: count the written rows the shadow holds: %w", err)
			}
			if n < b.rows {
				displaced = true
				break
			}
		}
		if displaced {
			if _, err := a.asideRun(ctx, tx, last, func(_, _ bool, n int) string { return a.rows(x.replaceHead, n) }); err != nil {
				return false, err
			}
			inShadow := func(_, _ bool, n int) string {
				return x.deleteHead + x.t.InShadow() + " AND (" + a.keyCond(false, n) + ")"
			}
			if _, err := a.asideRun(ctx, tx, keys, inShadow); err != nil {
				return false, err
			}
		}
	}
	if net > 0 || displaced {
		// Should the commit's outcome be unknown, rows may be aside.
		x.t.Holds(true)
	}
	switch {
	case displaced:
	case net > 0:
		return true, nil
	case !held:
		return false, nil // net == 0: the table was empty and is again
	case removed == 0:
		return true, nil // as it was
	}
	var holds bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+x.t.Table+")").Scan(&holds); err != nil {
		return false, fmt.Errorf("apply: look for rows aside: %w", err)
	}
	return holds, nil
}

// writtenLast returns, in their order, the ops that write a key (by its
// bytes, as myCollapse compares keys) that no later op of the batch writes
// or deletes.
func (a *MySQL) writtenLast(ops []myOp) []myOp {
	last := make(map[string]int, len(ops))
	keys := make([]string, len(ops))
	for i, o := range ops {
		keys[i] = a.keyOf(o.row)
		last[keys[i]] = i
	}
	var out []myOp
	for i, o := range ops {
		if !o.del && last[keys[i]] == i {
			out = append(out, o)
		}
	}
	return out
}

// asideCond is the condition that a row (of the shadow or of the aside
// table, which compare alike) holds, under the k-th new unique key, a value
// that one of ops writes (a NULL duplicates nothing), with its arguments:
// "" when no op writes a value but NULLs. One key per statement, so that
// the server looks the values up in its index. Its terms are padded to a
// power of two (repeating the last), so that few statement shapes are
// prepared.
func (a *MySQL) asideCond(ops []myOp, k int) (string, []any, error) {
	var terms []string
	var args []any
	n := 0 // arguments of the last term
	pos := a.aside.uniq[k]
rows:
	for _, o := range ops {
		t := make([]string, len(pos))
		var targs []any
		for i, p := range pos {
			c := a.cols[p]
			if c.index >= len(o.row) {
				return "", nil, fmt.Errorf("apply: row image has %d columns, want column %d", len(o.row), c.index+1)
			}
			v := o.row[c.index]
			if v == nil {
				continue rows
			}
			x, err := c.conv(v)
			if err != nil {
				return "", nil, fmt.Errorf("apply: column %s: %w", c.name, err)
			}
			if c.errorValue != "" && myIsZero(v) {
				// The ENUM error value, by number: '' is a member's too.
				t[i] = c.name + "+0 = 0"
				continue
			}
			t[i] = a.aside.same[k][i]
			for range strings.Count(c.param, "?") {
				targs = append(targs, x)
			}
		}
		terms, args, n = append(terms, "("+strings.Join(t, " AND ")+")"), append(args, targs...), len(targs)
	}
	if len(terms) == 0 {
		return "", nil, nil
	}
	for len(terms)&(len(terms)-1) != 0 {
		terms, args = append(terms, terms[len(terms)-1]), append(args, args[len(args)-n:]...)
	}
	return strings.Join(terms, " OR "), args, nil
}

// asideRun runs the statements query makes of ops (one kind), in tx, and
// returns the rows they affected.
func (a *MySQL) asideRun(ctx context.Context, tx *sql.Tx, ops []myOp, query func(del, exact bool, n int) string) (int64, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	bs, err := a.batchesWith(ops, query)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range bs {
		m, err := a.asideExec(ctx, tx, b)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// asideExec runs one statement of myAside in tx and returns the rows it
// affected.
func (a *MySQL) asideExec(ctx context.Context, tx *sql.Tx, b myBatch) (int64, error) {
	st, err := a.stmt(ctx, b.query)
	if err != nil {
		return 0, err
	}
	var noted error
	res, err := a.run(ctx, tx, st, b, func() error {
		noted = a.noted(ctx, tx, "keeping the rows the new unique key turns away", len(b.errorValues) > 0)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("apply: keep the rows the new unique key turns away (%.60s...): %w", b.query, err)
	}
	if noted != nil {
		return 0, noted
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("apply: keep the rows the new unique key turns away: %w", err)
	}
	return n, nil
}

// Restore moves the rows waiting aside that fit into the shadow again
// (its unique indexes refuse none of them; of two rows aside that hold one
// value, the first) back into it, in one transaction, server-side. With
// final (every change to the original applied and its writes blocked), a
// row still aside is one the original duplicates under a new unique key:
// Restore returns a *table.DuplicateError naming the values and the keys of
// the rows that hold them, read from the shadow and the aside table only
// (the cut-over's connection holds the original locked).
func (a *MySQL) Restore(ctx context.Context, final bool) error {
	if a.err != nil {
		return a.err
	}
	x := a.aside
	if x == nil || !x.t.MayHoldRows() {
		return nil
	}
	tx, err := a.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("restore: begin: %w", err)
	}
	defer tx.Rollback() // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, x.restore); err != nil {
		return fmt.Errorf("restore: move the rows aside back into the shadow: %w", err)
	}
	if _, err := tx.ExecContext(ctx, x.deleteHead+x.t.InShadow()); err != nil {
		return fmt.Errorf("restore: remove the rows moved back from the aside table: %w", err)
	}
	var left int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+x.t.Table).Scan(&left); err != nil {
		return fmt.Errorf("restore: count the rows aside: %w", err)
	}
	if final && left > 0 {
		return x.t.Duplicates(ctx, tx, left, table.DuplicateAtCutOver)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("restore: commit: %w", err)
	}
	x.t.Holds(left > 0)
	return nil
}
