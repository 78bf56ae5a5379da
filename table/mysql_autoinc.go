package table

import (
	"fmt"
	"strings"
)

// A column that becomes AUTO_INCREMENT. A plain ALTER TABLE copies the rows
// into the new table with the session's sql_mode, and sets
// NO_AUTO_VALUE_ON_ZERO itself only where an AUTO_INCREMENT column is copied
// into one (MariaDB's copy_data_between_tables). Into a column that becomes
// AUTO_INCREMENT, then, a NULL and (unless the session's sql_mode has
// NO_AUTO_VALUE_ON_ZERO) a 0 are given the counter's next value: the ALTER
// renumbers those rows, or fails with a duplicate key when the number is
// taken. osc cannot renumber a row of a table that is being written (the
// changes to it would name a key the shadow no longer has), and keeping the 0
// or the NULL would give another table than the ALTER: it refuses such a
// row, in the copy and in the applier, and says how to fix it.

// MySQLRenumbered is the original's column that becomes the shadow's
// AUTO_INCREMENT column, and which of its values a plain ALTER renumbers.
type MySQLRenumbered struct {
	Table  string // the original's name, for the refusal
	Column string // the original's column
	Null   bool   // the column allows NULL, which the ALTER renumbers
	Zero   bool   // the ALTER renumbers 0 (sql_mode without NO_AUTO_VALUE_ON_ZERO)
}

// mysqlRenumbered returns the column of the mapping that becomes
// AUTO_INCREMENT and whose NULL or 0 the ALTER would renumber under the
// server's sql_mode globalMode, or nil.
func mysqlRenumbered(source, shadow *Table, mapping []ColumnMap, globalMode string) *MySQLRenumbered {
	keepsZero := false
	for _, m := range strings.Split(globalMode, ",") {
		keepsZero = keepsZero || strings.EqualFold(strings.TrimSpace(m), "NO_AUTO_VALUE_ON_ZERO")
	}
	for _, m := range mapping {
		src := source.Columns[m.SourceIndex]
		j := shadow.ColumnIndex(m.Shadow)
		if j < 0 || src.AutoIncrement || !shadow.Columns[j].AutoIncrement {
			continue
		}
		if !src.Nullable && keepsZero {
			return nil
		}
		return &MySQLRenumbered{Table: source.Name, Column: src.Name, Null: src.Nullable, Zero: !keepsZero}
	}
	return nil
}

// Cond is the SQL condition on a row of the original that the ALTER would
// renumber.
func (r *MySQLRenumbered) Cond() string {
	var conds []string
	if r.Null {
		conds = append(conds, QuoteMySQL(r.Column)+" IS NULL")
	}
	if r.Zero {
		conds = append(conds, QuoteMySQL(r.Column)+" = 0")
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// Refusal is the error for a row holding value ("NULL" or "0") in the column.
func (r *MySQLRenumbered) Refusal(value string) error {
	fix := "update those rows first (UPDATE " + QuoteMySQL(r.Table) + " SET " + QuoteMySQL(r.Column) +
		" = <an unused value> WHERE " + QuoteMySQL(r.Column)
	if value == "NULL" {
		fix += " IS NULL)"
	} else {
		fix += " = 0), or add NO_AUTO_VALUE_ON_ZERO to the server's sql_mode, under which the ALTER keeps the 0"
	}
	return fmt.Errorf("column %s becomes AUTO_INCREMENT and a row holds %s in it: a plain ALTER TABLE would give that row "+
		"the next AUTO_INCREMENT value (or fail with a duplicate key), which osc cannot do while the table is being written: %s",
		r.Column, value, fix)
}
