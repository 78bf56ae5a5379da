package apply

import (
	"database/sql"
	"strings"

	"osc/table"
)

// NewMySQLRevert returns the applier of a revert window (table.PlanMySQLRevert):
// it writes changes to the altered table into the old table, whose columns
// the altered table lacks (the ones the --alter dropped) keep their values.
// Inserts and updates become INSERT … ON DUPLICATE KEY UPDATE of the mapped
// columns, never REPLACE, which would delete the row and write the unmapped
// columns' defaults; deletes are deletes by key. The reverse plan refuses a
// unique index of the old table that the altered table's do not imply, so the
// row that a write meets on a duplicate is the one with its key.
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
	return a
}
