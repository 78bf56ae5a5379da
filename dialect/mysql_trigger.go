package dialect

import (
	"context"
	"fmt"

	"osc/table"
)

// carriedTriggers returns the triggers the cut-over makes on the new table.
func (d *mysqlDialect) carriedTriggers() []table.MySQLTrigger {
	if d.insp == nil {
		return nil
	}
	return d.insp.CarriedTriggers
}

// dropOldTriggers drops the triggers of the old table kept after the
// cut-over: its writes would fire them, and the new table, which has them
// under their planned names, takes their names back after (ownNames). A
// failure is a warning.
func (d *mysqlDialect) dropOldTriggers(ctx context.Context, schema, old string) {
	names, err := table.DropMySQLTriggers(ctx, d.db, schema, old)
	if err != nil {
		d.log.Warn("the old table keeps triggers: " + err.Error())
		return
	}
	if len(names) > 0 {
		d.log.Info("dropped the old table's triggers", "table", schema+"."+old, "triggers", names)
	}
}

// dropShadowTriggers drops the triggers a killed run's cut-over made on the
// shadow: the resumed applier's writes would fire them.
func (d *mysqlDialect) dropShadowTriggers(ctx context.Context, schema, shadow string) error {
	names, err := table.DropMySQLTriggers(ctx, d.db, schema, shadow)
	if err != nil {
		return fmt.Errorf("the killed run's cut-over left triggers on the shadow table: %w", err)
	}
	if len(names) > 0 {
		d.log.Info("dropped the triggers the killed run's cut-over made on the shadow", "table", schema+"."+shadow, "triggers", names)
	}
	return nil
}
