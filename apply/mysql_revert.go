package apply

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

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
// imply, so the row that a write meets on a duplicate is the one with its key,
// unless a refused change left another row in an earlier state: the upsert
// then fails rather than update that row.
func NewMySQLRevert(db *sql.DB, plan *table.Plan) *MySQL {
	a := NewMySQL(db, plan)
	if a.err != nil {
		return a
	}
	// The first assignment sets the key's first column to NULL, which strict
	// mode refuses (1048, table.MySQLUnfit), when the row met is not the one
	// with the written row's key: a duplicate in another unique index, with
	// a row that a refused change left in an earlier state (the table's
	// row has given the value up since). Updating that row would rewrite it
	// into the written one, another key's row, with its values of the
	// columns the old table alone has.
	same := make([]string, len(a.keys))
	for i, k := range a.keys {
		same[i] = k.name + " = VALUES(" + k.name + ")"
	}
	set := []string{a.keys[0].name + " = IF(" + strings.Join(same, " AND ") + ", " + a.keys[0].name + ", NULL)"}
	for _, c := range a.cols {
		set = append(set, c.name+" = VALUES("+c.name+")")
	}
	for _, m := range plan.Mapping {
		if m.SourceIndex == plan.KeyIndex[0] {
			a.guard = m.Shadow
		}
	}
	a.replaceHead = "INSERT " + strings.TrimPrefix(a.replaceHead, "REPLACE ")
	a.upsertTail = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	a.moves = true
	// The reverse plan refuses a unique index of the old table that the
	// altered table's do not imply: nothing is turned away.
	a.aside = nil
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
		b.WriteString(k.name + " = " + k.cmp)
	}
	return []myBatch{{query: b.String(), args: append(append([]any{}, vals[0].args...), keys[0].args...), errorValues: vals[0].errorValues,
		invalidDates: vals[0].invalidDates}}, nil
}

// clash explains the guard's refusal (NewMySQLRevert): the row is not
// written, the old table holds another row with one of its unique values.
func (a *MySQL) clash(err error) error {
	var me *mysql.MySQLError
	if a.guard == "" || !errors.As(err, &me) || me.Number != 1048 || !strings.Contains(me.Message, "'"+a.guard+"'") {
		return err
	}
	return fmt.Errorf("another row of the old table holds one of this row's unique values (a change the old table refused left "+
		"that row as it was; this row fits once it is written again after that one): %w", err)
}
