package dialect

import (
	"context"
	"fmt"
	"time"

	"osc/cutover"
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

// carriedNames returns, by planned name, the own names of the foreign keys
// and triggers the cut-over carried to the new table: the inspection's; or,
// in a run resumed after the killed run swapped the tables (no inspection),
// those its checkpoint table keeps, or, made by an osc that did not keep
// them, those the old table still has.
func (d *mysqlDialect) carriedNames(ctx context.Context, schema, old string) (fks, trgs map[string]string) {
	switch {
	case d.insp != nil:
		n := d.insp.CarriedNames()
		return n.ForeignKeys, n.Triggers
	case d.carried != nil:
		return d.carried.ForeignKeys, d.carried.Triggers
	}
	fks, trgs = map[string]string{}, map[string]string{}
	ownFKs, err := table.ReadMySQLForeignKeys(ctx, d.db, schema, old)
	if err != nil {
		d.log.Warn("cannot tell the migrated table's foreign keys' own names (it keeps those they were carried under)", "err", err)
	}
	for _, f := range ownFKs {
		fks[table.PlannedMySQLName(f.Name)] = f.Name
	}
	ownTrgs, err := table.ReadMySQLTriggers(ctx, d.db, schema, old)
	if err != nil {
		d.log.Warn("cannot tell the migrated table's triggers' own names (it keeps those they were carried under)", "err", err)
	}
	for _, t := range ownTrgs {
		trgs[table.PlannedMySQLName(t.Name)] = t.Name
	}
	return fks, trgs
}

// ownNames gives the new table's carried foreign keys and triggers their
// own names back (cutover.MySQLOwnNames), once the old table no longer holds
// them. The migration is done by then: a failure is a warning that gives
// the statements to run. It takes at most half the time left to ctx, so
// that the cleanup after it still runs.
func (d *mysqlDialect) ownNames(ctx context.Context, schema, name string, fks, trgs map[string]string) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	names, err := cutover.MySQLOwnNames(ctx, d.db, cutover.MySQLNamesOptions{
		Schema:      schema,
		Table:       name,
		ForeignKeys: fks,
		Triggers:    trgs,
		LockTimeout: d.cfg.CutOverLockTimeout,
		Retries:     d.cfg.CutOverRetries,
		Log:         d.log,
	})
	if err != nil {
		d.log.Warn("the migrated table keeps the names some of its foreign keys and triggers were carried under (it is otherwise complete): " + err.Error())
		return
	}
	if len(names) > 0 {
		d.log.Info("the carried foreign keys and triggers have their own names again", "table", schema+"."+name, "names", names)
	}
}
