package dialect

import (
	"context"
	"fmt"

	"osc/table"
)

// dropOldForeignKeys drops the foreign keys of the old table kept after the
// cut-over (a table with foreign keys migrates only when the --alter drops
// them or with --discard-foreign-keys): they would go on checking the
// parent's deletes and updates against the old table's rows. The migration
// is done by then, so a failure is a warning that gives the statement to
// run.
func (d *mysqlDialect) dropOldForeignKeys(ctx context.Context, schema, old string) {
	names, err := table.DropMySQLForeignKeys(ctx, d.db, schema, old, d.cfg.CutOverLockTimeout, d.cfg.CutOverRetries)
	if err != nil {
		d.log.Warn("the old table keeps its foreign keys, which check the parent's deletes and updates against its rows: " + err.Error())
		return
	}
	if len(names) > 0 {
		d.log.Info("dropped the old table's foreign keys", "table", schema+"."+old, "foreign keys", names)
	}
}

// carriedForeignKeys returns the ADD clauses and names of the foreign keys
// the cut-over carries to the new table (table.MySQLInspection.ShadowForeignKeys).
func (d *mysqlDialect) carriedForeignKeys() ([]string, []string, error) {
	if d.insp == nil {
		return nil, nil, nil
	}
	return d.insp.ShadowForeignKeys()
}

// dropShadowForeignKeys drops the foreign keys a killed run's cut-over added
// to the shadow (osc's own table, which has none otherwise).
func (d *mysqlDialect) dropShadowForeignKeys(ctx context.Context, schema, shadow string) error {
	names, err := table.DropMySQLForeignKeys(ctx, d.db, schema, shadow, d.cfg.CutOverLockTimeout, d.cfg.CutOverRetries)
	if err != nil {
		return fmt.Errorf("the killed run's cut-over left foreign keys on the shadow table: %w", err)
	}
	if len(names) > 0 {
		d.log.Info("dropped the foreign keys the killed run's cut-over added to the shadow", "table", schema+"."+shadow, "foreign keys", names)
	}
	return nil
}
