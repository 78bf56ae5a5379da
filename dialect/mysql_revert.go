package dialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"osc/apply"
	"osc/cdc"
	"osc/cutover"
	"osc/engine"
	"osc/table"
)

// mysqlRevert is the MySQL dialect's part of a revert window: the reverse
// plan (PlanRevert), the forward capture, and where in the binlog the tables
// were swapped.
type mysqlRevert struct {
	plan *table.Plan      // nil: no revert window
	fwd  *cdc.MySQLSource // the forward capture (NewSource)
	from cdc.MySQLPos     // the end of the cut-over's RENAME in the binlog
	err  error            // why from is unknown
}

// swapPositionWait bounds the wait for the forward reader to read the
// cut-over's RENAME: only the events written since the last drain precede it.
const swapPositionWait = time.Minute

// PlanRevert plans the reverse migration (table.PlanMySQLRevert) while the
// tables still have their names before the swap.
func (d *mysqlDialect) PlanRevert(ctx context.Context) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if d.insp == nil || d.insp.Alter == nil {
		return errors.New("mysql: PlanRevert without an inspection")
	}
	// The cut-over carries the table's foreign keys and triggers to the new
	// table; the window takes them off the old one (takeOldLinks) and the
	// revert carries them back (CutOver). Foreign keys the migration
	// discards are not enforced on the new table meanwhile: the old
	// table's rows need not satisfy them at the revert.
	if d.insp.ForeignKeys != "" && d.conn.DiscardForeignKeys {
		return fmt.Errorf("--revert-window: %s.%s has foreign keys of its own, which --discard-foreign-keys leaves off the new table: "+
			"a revert could not add them back to rows written meanwhile; migrate it without one of the two", d.cfg.Schema, d.cfg.Table)
	}
	rp, err := table.PlanMySQLRevert(ctx, d.db, plan, d.insp.Alter)
	if err != nil {
		return err
	}
	d.revert.plan = rp
	return nil
}

// noteSwap, after the cut-over swapped the tables, reads where in the binlog
// they were swapped, for a revert window's reverse capture: the forward
// reader ends at the RENAME (the applier still runs and takes what it reads).
func (d *mysqlDialect) noteSwap(ctx context.Context) {
	if d.revert.plan == nil || d.revert.fwd == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, swapPositionWait)
	defer cancel()
	d.revert.from, d.revert.err = d.revert.fwd.SwapPosition(wctx)
}

// Reverse returns the reverse migration, its capture starting right after
// the cut-over's RENAME.
func (d *mysqlDialect) Reverse(ctx context.Context) (engine.Reverse, error) {
	rp := d.revert.plan
	switch {
	case rp == nil:
		return nil, errors.New("mysql: Reverse without PlanRevert")
	case d.revert.err != nil:
		return nil, d.revert.err
	case d.revert.from.File == "":
		return nil, errors.New("mysql: Reverse before the cut-over")
	}
	// The migration is done: a run killed from here on is not resumed (the
	// table is the altered one, and a killed revert may have swapped the
	// tables back), and what it leaves is reported as leftovers.
	schema := rp.Source.Schema
	if err := table.DropMySQLTable(ctx, d.db, schema, table.MySQLCheckpointName(rp.Source.Name)); err != nil {
		return nil, err
	}
	// The cut-over's final restore emptied the aside table (step 5).
	if d.aside != nil {
		if err := table.DropMySQLTable(ctx, d.db, schema, table.MySQLAsideName(rp.Source.Name)); err != nil {
			return nil, err
		}
	}
	if err := d.takeOldLinks(ctx, schema, rp.Shadow.Name); err != nil {
		return nil, err
	}
	src, err := cdc.NewMySQL(cdc.MySQLConfig{
		Host:     d.conn.Host,
		Port:     uint16(d.conn.Port),
		User:     d.conn.User,
		Password: d.conn.Password,
		ServerID: d.serverID(),
		Flavor:   d.flavor,
		TLS:      d.conn.TLSFor(d.conn.Host),
		From:     d.revert.from,
	}, d.db, rp)
	if err != nil {
		return nil, err
	}
	d.log.Info("reverse change capture from the swap", "position", d.revert.from.String())
	return &mysqlReverse{d: d, plan: rp, src: src, ap: apply.NewMySQLRevert(d.db, rp)}, nil
}

// mysqlReverse is the engine.Reverse of MySQL/MariaDB.
type mysqlReverse struct {
	d    *mysqlDialect
	plan *table.Plan
	src  *cdc.MySQLSource
	ap   *apply.MySQL
}

func (r *mysqlReverse) Source() engine.Source   { return r.src }
func (r *mysqlReverse) Applier() engine.Applier { return r.ap }

func (r *mysqlReverse) Key() ([]int, []string) { return r.plan.KeyIndex, r.plan.Key }

// Unfit: the server refused the row's values (table.MySQLUnfit).
func (r *mysqlReverse) Unfit(err error) bool { return table.MySQLUnfit(err) }

// CutOver swaps back with the forward cut-over's algorithm: the table (the
// altered one) goes to the shadow's name, which is the sentry meanwhile, and
// the old table to the table's; both sort after the table's name.
func (r *mysqlReverse) CutOver(ctx context.Context, ready, drain func(context.Context) error) error {
	fks, fkNames, trgs := r.d.linksBack()
	return cutover.MySQL(ctx, r.d.db, cutover.MySQLOptions{
		Schema:      r.plan.Source.Schema,
		Table:       r.plan.Source.Name,
		Shadow:      r.plan.Shadow.Name,
		Old:         r.plan.OldName,
		LockTimeout: r.d.cfg.CutOverLockTimeout,
		Retries:     r.d.cfg.CutOverRetries,
		Log:         r.d.log,

		ForeignKeys:     fks,
		ForeignKeyNames: fkNames,
		Triggers:        trgs,
	}, ready, func(ctx context.Context) error {
		if err := drain(ctx); err != nil {
			return err
		}
		return r.carryAutoIncrement(ctx)
	})
}

// carryAutoIncrement raises the old table's AUTO_INCREMENT counter to the
// table's, under the revert's lock after its drain (writers of the table
// wait; the RENAME is not queued yet, so nothing holds the old table). The
// old table took every row inserted during the window with its id, which
// moved its counter past it, but not the ids the table handed out to a row
// the old table refused and that was then deleted (the refusal lifts), nor
// to a rolled-back insert: after the revert the old table would hand out
// those ids again, ids the application has seen. The counter goes back with
// the revert as a forward cut-over carries it.
func (r *mysqlReverse) carryAutoIncrement(ctx context.Context) error {
	schema := r.plan.Source.Schema
	c, err := r.d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("carry AUTO_INCREMENT back: %w", err)
	}
	// Its session settings must not reach the pool.
	defer func() {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		_ = c.Close()
	}()
	secs := max(int(math.Ceil(r.d.cfg.CutOverLockTimeout.Seconds())), 1)
	set := fmt.Sprintf("SET SESSION lock_wait_timeout = %d", secs)
	if r.d.flavor == "mysql" {
		// MySQL 8 reads AUTO_INCREMENT from cached statistics otherwise.
		set += ", information_schema_stats_expiry = 0"
	}
	if _, err := c.ExecContext(ctx, set); err != nil {
		return fmt.Errorf("carry AUTO_INCREMENT back: %w", err)
	}
	counter := func(name string) (sql.NullInt64, error) {
		var n sql.NullInt64
		err := c.QueryRowContext(ctx, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
			schema, name).Scan(&n)
		if err != nil {
			return n, fmt.Errorf("carry AUTO_INCREMENT back: read %s's: %w", name, err)
		}
		return n, nil
	}
	next, err := counter(r.plan.Source.Name)
	if err != nil {
		return err
	}
	old, err := counter(r.plan.Shadow.Name)
	if err != nil || !next.Valid || !old.Valid || next.Int64 <= old.Int64 {
		return err
	}
	if _, err := c.ExecContext(ctx, "ALTER TABLE "+table.QuoteMySQL(schema, r.plan.Shadow.Name)+" AUTO_INCREMENT = "+strconv.FormatInt(next.Int64, 10)); err != nil {
		return fmt.Errorf("carry AUTO_INCREMENT back to %s: %w", r.plan.Shadow.Name, err)
	}
	r.d.log.Info("revert: the old table's AUTO_INCREMENT raised to the table's", "old table", r.plan.Shadow.Name,
		"from", old.Int64, "to", next.Int64)
	return nil
}

// Cleanup ends the window. Without a revert it is the forward migration's
// cleanup after a cut-over. After one, the changelog and checkpoint tables go,
// and the altered table, now under the shadow's name, is dropped with
// --ok-to-drop-table, else kept.
func (r *mysqlReverse) Cleanup(ctx context.Context, reverted bool) error {
	if !reverted {
		return r.d.Cleanup(ctx, true)
	}
	db, schema := r.d.db, r.plan.Source.Schema
	if !r.d.cfg.OkToDropTable {
		// The migrated table, kept, must not check its parents' deletes
		// against its rows, nor hold the names a later migration plans.
		r.d.dropOldForeignKeys(ctx, schema, r.plan.OldName)
		r.d.dropOldTriggers(ctx, schema, r.plan.OldName)
	}
	var errs []error
	if err := table.DropMySQLTable(ctx, db, schema, r.plan.ChangelogName); err != nil {
		errs = append(errs, err)
	}
	if r.d.cfg.OkToDropTable {
		if err := table.DropMySQLTable(ctx, db, schema, r.plan.OldName); err != nil {
			errs = append(errs, err)
		} else {
			r.d.log.Info("dropped the migrated table", "table", schema+"."+r.plan.OldName)
		}
	} else {
		r.d.log.Info("the migrated table is kept; drop it when it is no longer needed", "table", schema+"."+r.plan.OldName)
	}
	if len(errs) == 0 {
		errs = append(errs, table.DropMySQLTable(ctx, db, schema, table.MySQLCheckpointName(r.plan.Source.Name)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up after the revert: %w", err)
	}
	return nil
}

// takeOldLinks, as the window opens, drops the old table's foreign keys and
// triggers, which the new table has under their planned names since the
// cut-over (it takes their own names back only once the window ends without
// a revert, Cleanup; a revert gives them to the old table again, linksBack): the window's writes to the old table would fire the triggers a
// second time, and its foreign keys would refuse a parent's delete that
// comes before the window has applied the delete of its child.
func (d *mysqlDialect) takeOldLinks(ctx context.Context, schema, old string) error {
	if len(d.insp.CarriedForeignKeys) > 0 {
		if _, err := table.DropMySQLForeignKeys(ctx, d.db, schema, old, d.cfg.CutOverLockTimeout, d.cfg.CutOverRetries); err != nil {
			return fmt.Errorf("the revert window takes the old table's foreign keys off: %w", err)
		}
	}
	if len(d.insp.CarriedTriggers) > 0 {
		if _, err := table.DropMySQLTriggers(ctx, d.db, schema, old); err != nil {
			return fmt.Errorf("the revert window takes the old table's triggers off: %w", err)
		}
	}
	return nil
}

// linksBack returns what a revert carries back to the old table: the
// table's foreign keys and triggers as they were before the migration, under
// their own names (the new table's are its planned ones).
func (d *mysqlDialect) linksBack() (fks, fkNames []string, trgs []table.MySQLTrigger) {
	for _, f := range d.insp.CarriedForeignKeys {
		fks = append(fks, "ADD "+f.Definition())
		fkNames = append(fkNames, f.Name)
	}
	for _, t := range d.insp.CarriedTriggers {
		t.Shadow = t.Name
		trgs = append(trgs, t)
	}
	return fks, fkNames, trgs
}
