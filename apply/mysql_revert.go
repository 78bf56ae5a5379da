package apply

import (
	"database/sql"
	"fmt"
	"strings"

	"osc/table"
)

// NewMySQLRevert returns the applier of a revert window (table.PlanMySQLRevert):
// it writes changes to the altered table into the old table, whose columns
// the altered table lacks (the ones the --alter dropped) keep their values.
// Inserts and updates become INSERT … ON DUPLICATE KEY UPDATE of the mapped
// columns, never REPLACE, which would delete the row and write the unmapped
// columns' defaults; deletes are deletes by key; a key-changing update moves
// the row (an UPDATE by its old key, so that the unmapped columns go with it),
// then upserts it, which inserts it when the old key had no row. The reverse
// plan refuses a unique index of the old table that the altered table's do not
// imply, so the row that a write meets on a duplicate is the one with its key.
func NewMySQLRevert(db *sql.DB, plan *table.Plan) *MySQL {
	a := NewMySQL(db, plan)
	if a.err != nil {
		return a
	}
	set := make([]string, len(a.cols))
	for i, c := range a.cols {
		set[i] = c.name + " = VALUES(" + c.name + ")"
	}
	a.replaceHead = "INSERT " + strings.TrimPrefix(a.replaceHead, "REPLACE ")
	a.upsertTail = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	a.moves = true
	return a
}

// move is the statement of a move op: UPDATE the row under the old key to
// the new values (the mapped columns, key included).
func (a *MySQL) move(o myOp) ([]myBatch, error) {
	vals, err := a.batches([]myOp{{row: o.row}})
	if err != nil {
		return nil, err
	}
	keys, err := a.batches([]myOp{{del: true, row: o.before}})
	if err != nil {
		return nil, err
	}
	if len(vals) != 1 || len(keys) != 1 {
		return nil, fmt.Errorf("apply: a move makes %d and %d statements, want one each", len(vals), len(keys))
	}
	var b strings.Builder
	b.WriteString("UPDATE " + strings.TrimSuffix(strings.TrimPrefix(a.deleteHead, "DELETE FROM "), " WHERE ") + " SET ")
	for j, c := range a.cols {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name + " = " + c.param)
	}
	b.WriteString(" WHERE ")
	for j, k := range a.keys {
		if j > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(k.name + " = " + k.param)
	}
	return []myBatch{{query: b.String(), args: append(append([]any{}, vals[0].args...), keys[0].args...)}}, nil
}
