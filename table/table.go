// Package table reads tables (columns, keys) from the database's catalog,
// checks what the migration needs of the server and the table, plans the
// migration and creates the shadow table.
package table

import "osc/plan"

// The description of tables and of the migration is defined in package plan,
// which the engine imports without a database driver.
type (
	Column     = plan.Column
	Table      = plan.Table
	ColumnMap  = plan.ColumnMap
	ColumnFill = plan.ColumnFill
	Plan       = plan.Plan
)
