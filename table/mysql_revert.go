package table

import (
	"context"
	"database/sql"
	"fmt"
)

// PlanMySQLRevert returns the plan of the reverse migration that keeps the
// old table current during a revert window (--revert-window): a migration
// whose original is the altered table, under the table's name after the
// cut-over, and whose shadow is the old table, under Plan.OldName. It is
// made from the forward plan fwd and the --alter as read (alter) while both
// tables still have their names before the swap, so that a migration whose
// old table cannot be kept exactly current is refused before it copies
// anything.
//
// The reverse is planned by BuildMySQLPlan itself, with the columns the
// --alter adds read as dropped and its renames read backwards, so it refuses
// what a forward plan refuses. In particular, a unique index of the old
// table that no unique index of the altered table implies is refused: the
// reverse applier writes a row with INSERT … ON DUPLICATE KEY UPDATE of the
// mapped columns (apply.NewMySQLRevert), which on a clash in such an index
// would update the other row. A column the --alter drops is an added column
// to the reverse plan: the applier leaves it alone in rows the old table
// holds, and a row inserted during the window gets what a plain ALTER TABLE
// … ADD COLUMN of it would give (its DEFAULT; the type's implicit default
// when it is NOT NULL without one).
func PlanMySQLRevert(ctx context.Context, db *sql.DB, fwd *Plan, alter *MySQLAlter) (*Plan, error) {
	if err := fwd.Usable(); err != nil {
		return nil, err
	}
	if alter == nil {
		return nil, fmt.Errorf("plan the revert: no --alter")
	}
	if err := fwd.RowKeyRevertRefusal(); err != nil {
		return nil, err
	}
	if err := revertRoundingRefusal(fwd); err != nil {
		return nil, fmt.Errorf("--revert-window: the old table could not be kept exactly current after the cut-over: %w", err)
	}
	schema := fwd.Source.Schema
	oldCols, oldColls, err := readMySQLColumns(ctx, db, schema, fwd.Source.Name)
	if err != nil {
		return nil, err
	}
	newCols, newColls, err := readMySQLColumns(ctx, db, schema, fwd.Shadow.Name)
	if err != nil {
		return nil, err
	}
	oldIdx, err := readMySQLIndexes(ctx, db, schema, fwd.Source.Name)
	if err != nil {
		return nil, err
	}
	newIdx, err := readMySQLIndexes(ctx, db, schema, fwd.Shadow.Name)
	if err != nil {
		return nil, err
	}
	back := ReverseMySQLAlter(oldCols, newCols, alter)
	// After the swap the altered table has the table's name and the old one
	// the old table's; the altered table gets the shadow's name back at a
	// revert.
	src := *newCols
	src.Name = fwd.Source.Name
	src.HashColumns = mysqlHashColumns(newIdx)
	dst := *oldCols
	dst.Name = fwd.OldName
	p, err := BuildMySQLPlan(MySQLPlanInput{
		Source: &src, Shadow: &dst, SourceIndexes: newIdx, ShadowIndexes: oldIdx, Alter: back,
		OldName: fwd.Shadow.Name, ChangelogName: fwd.ChangelogName, EstimatedRows: fwd.EstimatedRows,
		SourceCollations: newColls, ShadowCollations: oldColls, TimeZone: fwd.TimeZone, AlterTime: fwd.AlterTime,
	})
	if err != nil {
		return nil, fmt.Errorf("--revert-window: the old table could not be kept exactly current after the cut-over: %w", err)
	}
	if len(p.NewUnique) > 0 {
		return nil, fmt.Errorf("--revert-window: the old table could not be kept exactly current after the cut-over: it has the UNIQUE key %s, "+
			"which no unique key of the altered table implies", p.NewUnique[0].Describe())
	}
	// A dropped column with a DEFAULT CURRENT_TIMESTAMP gets the insert's
	// time, as any INSERT gives it: no single ALTER time applies to rows
	// inserted over the window.
	fills := p.Fills[:0]
	for _, f := range p.Fills {
		if j := columnIndexFold(p.Shadow, f.Shadow); j >= 0 && p.Shadow.Columns[j].NoDefault {
			fills = append(fills, f)
		}
	}
	p.Fills = fills
	var globalMode string
	if err := db.QueryRowContext(ctx, "SELECT @@global.sql_mode").Scan(&globalMode); err != nil {
		return nil, fmt.Errorf("read the server's sql_mode: %w", err)
	}
	if err := padCharRefusal(globalMode, p); err != nil {
		return nil, fmt.Errorf("--revert-window: %w", err)
	}
	if err := checkFillChecks(ctx, db, schema, fwd.Source.Name, p); err != nil {
		return nil, fmt.Errorf("--revert-window: %w", err)
	}
	// Before the swap: the altered table is the shadow, the old table the
	// table.
	if err := readMySQLMembers(ctx, db, p, [2]string{schema, fwd.Shadow.Name}, [2]string{schema, fwd.Source.Name}); err != nil {
		return nil, fmt.Errorf("--revert-window: %w", err)
	}
	return p, nil
}

// ReverseMySQLAlter reads the --alter backwards, from the altered table's
// columns (to) to the original's (from): a column the alter renames is
// renamed back, a column it adds is dropped. A column it drops is added
// (BuildMySQLPlan finds it in the old table only).
func ReverseMySQLAlter(from, to *Table, alter *MySQLAlter) *MySQLAlter {
	back := &MySQLAlter{Renames: map[string]string{}, Dropped: map[string]bool{}}
	reached := map[int]bool{}
	for _, c := range from.Columns {
		j := columnIndexFold(to, alter.ShadowName(c.Name))
		if j < 0 {
			continue
		}
		reached[j] = true
		if n := to.Columns[j].Name; n != c.Name {
			back.Renames[foldName(n)] = c.Name
		}
	}
	for j, c := range to.Columns {
		if !reached[j] {
			back.Dropped[foldName(c.Name)] = true
		}
	}
	return back
}
