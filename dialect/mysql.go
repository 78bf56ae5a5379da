package dialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"osc/apply"
	"osc/cdc"
	"osc/checksum"
	"osc/copier"
	"osc/cutover"
	"osc/engine"
	"osc/probe"
	"osc/table"
	"osc/throttle"
)

// mysqlDialect is the Dialect of MySQL and MariaDB: binlog capture, INSERT
// IGNORE chunks, REPLACE/DELETE apply, and the sentry cut-over.
type mysqlDialect struct {
	cfg  engine.Config
	conn table.MySQLConn
	log  *slog.Logger

	db     *sql.DB
	lock   *table.MySQLLock
	flavor string // "mariadb" or "mysql"
	insp   *table.MySQLInspection
	plan   *table.Plan // made by CreateShadow or Resume
	// from is where a resumed run's capture starts (Resume; zero: the
	// server's current position).
	from cdc.MySQLPos
	// sentry: the killed run that Resume took up left its cut-over
	// sentry, which the cut-over drops first.
	sentry bool
	// cleanupOnly: with --resume, the killed run's shadow name is gone (it
	// swapped the tables, or lost the shadow): Inspect did not inspect the
	// table, and Resume can only report the swap for cleanup, or refuse.
	cleanupOnly bool
	// carried: in a run resumed after the killed run's swap, the names of
	// the foreign keys and triggers its cut-over carried, as its checkpoint
	// table keeps them (nil: made by an osc that did not keep them).
	carried *table.MySQLCarriedNames
	// revert is the revert window's (mysql_revert.go).
	revert mysqlRevert
	// aside is the aside table of a plan with new unique keys (nil: none),
	// shared by the copy and the applier; asideLeft: a resumed run found a
	// killed run's, which the cleanup drops.
	aside     *table.MySQLAside
	asideLeft bool
}

var _ engine.Dialect = (*mysqlDialect)(nil)

// NewMySQL returns the MySQL/MariaDB dialect for one migration. It connects
// in Inspect.
func NewMySQL(cfg engine.Config, conn table.MySQLConn, log *slog.Logger) (engine.Dialect, error) {
	cfg.Defaults()
	switch {
	case cfg.Schema == "":
		return nil, errors.New("mysql: the database is required (--database)")
	case cfg.Table == "":
		return nil, errors.New("mysql: the table is required (--table)")
	case conn.Port <= 0 || conn.Port > 65535:
		return nil, fmt.Errorf("mysql: port %d is out of range", conn.Port)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &mysqlDialect{cfg: cfg, conn: conn, log: log}, nil
}

func (d *mysqlDialect) Inspect(ctx context.Context) error {
	if d.db == nil {
		db, err := table.OpenMySQL(ctx, d.conn, d.cfg.Schema)
		if err != nil {
			return err
		}
		d.db = db
	}
	srv, err := table.ReadMySQLServer(ctx, d.db)
	if err != nil {
		return err
	}
	if err := srv.Check(); err != nil {
		return err
	}
	d.flavor = srv.Flavor()
	// Use the names as the server stores them: with lower_case_table_names
	// set, --table Orders finds orders, but the binlog names orders, and
	// events under another spelling would never match.
	var schema, name string
	err = d.db.QueryRowContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, d.cfg.Schema, d.cfg.Table).Scan(&schema, &name)
	switch {
	case err == nil:
		d.cfg.Schema, d.cfg.Table = schema, name
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("look up %s.%s: %w", d.cfg.Schema, d.cfg.Table, err)
	}
	if d.lock == nil {
		lock, err := table.LockMySQL(ctx, d.db, d.cfg.Schema, d.cfg.Table)
		if err != nil {
			return err
		}
		d.lock = lock
	}
	if err := d.initiallyDrop(ctx); err != nil {
		return err
	}
	opts := table.MySQLInspectOptions{Resume: d.cfg.Resume, DiscardForeignKeys: d.conn.DiscardForeignKeys, Flavor: d.flavor}
	if d.cfg.Resume {
		// After a swap the table is the altered one, which the refusals
		// of what osc cannot migrate do not concern (an --alter may make
		// what osc refuses to migrate, COMPRESSED columns say), and
		// refusing them would leave the killed run's leftovers for good.
		gone, err := d.shadowGone(ctx)
		if err != nil {
			return err
		}
		if gone {
			d.cleanupOnly = true
			d.log.Info("resuming: the killed run's shadow table is gone, so it swapped the tables (or lost the shadow): only cleanup is left",
				"table", d.cfg.Schema+"."+d.cfg.Table)
			return nil
		}
	}
	insp, err := table.InspectMySQL(ctx, d.db, d.cfg.Schema, d.cfg.Table, d.cfg.Alter, opts)
	if err != nil {
		return err
	}
	if insp.CopyRefusal != nil && (d.cfg.Resume || d.cfg.RevertWindow > 0 ||
		d.cfg.Strategy != engine.StrategyAuto && d.cfg.Strategy != engine.StrategyNative) {
		// The run copies (a resumed one, one that keeps the old table
		// to swap back, --strategy copy): refused now, as the native
		// path (engine.planNative) is not asked.
		return insp.CopyRefusal
	}
	insp.TimeZone = d.conn.TimeZone
	d.insp = insp
	d.log.Info("inspected", "server", srv.Version, "flavor", d.flavor,
		"table", d.cfg.Schema+"."+d.cfg.Table, "estimated rows", insp.EstimatedRows)
	return nil
}

func (d *mysqlDialect) CreateShadow(ctx context.Context) (*engine.Plan, error) {
	if d.insp == nil {
		return nil, errors.New("mysql: CreateShadow before a successful Inspect")
	}
	plan, err := table.CreateMySQLShadow(ctx, d.db, d.insp)
	if err != nil {
		return nil, err
	}
	d.plan = plan
	if err := d.createAside(ctx, plan); err != nil {
		if cerr := d.Cleanup(context.WithoutCancel(ctx), false); cerr != nil {
			err = errors.Join(err, cerr)
		}
		d.plan = nil
		return nil, err
	}
	if err := checkNewUnique(d.cfg, plan, func() error { return table.MySQLDuplicates(ctx, d.db, plan) }); err != nil {
		if cerr := d.Cleanup(context.WithoutCancel(ctx), false); cerr != nil {
			err = errors.Join(err, cerr)
		}
		d.plan = nil
		return nil, err
	}
	if d.cfg.Execute && !d.cfg.NoCheckpoint {
		if err := table.CreateMySQLCheckpoint(ctx, d.db, plan, d.insp.CarriedNames()); err != nil {
			if cerr := d.Cleanup(context.WithoutCancel(ctx), false); cerr != nil {
				err = errors.Join(err, cerr)
			}
			d.plan = nil
			return nil, err
		}
	}
	return enginePlan(plan), nil
}

// createAside creates the aside table of a plan with new unique keys
// (table.MySQLAside), with the shadow.
func (d *mysqlDialect) createAside(ctx context.Context, plan *table.Plan) error {
	a, err := table.NewMySQLAside(plan)
	if err != nil || a == nil {
		return err
	}
	if err := a.Create(ctx, d.db); err != nil {
		return err
	}
	d.aside = a
	return nil
}

// made returns the plan CreateShadow made.
func (d *mysqlDialect) made() (*table.Plan, error) {
	if d.plan == nil {
		return nil, errors.New("mysql: no plan: CreateShadow did not succeed")
	}
	return d.plan, nil
}

// serverID is the id the binlog reader registers with: the configured one,
// or one derived from the process id in 1000000..1999999.
func (d *mysqlDialect) serverID() uint32 {
	if d.conn.ReplicaServerID != 0 {
		return d.conn.ReplicaServerID
	}
	return 1000000 + uint32(os.Getpid()%1000000)
}

func (d *mysqlDialect) NewSource() (engine.Source, error) {
	plan, err := d.made()
	if err != nil {
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
		From:     d.from,
	}, d.db, plan)
	if err != nil {
		return nil, err
	}
	d.revert.fwd = src
	return src, nil
}

func (d *mysqlDialect) NewCopier() (engine.Copier, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	c := copier.NewMySQL(d.db, plan)
	c.PanicOnWarnings = d.conn.PanicOnWarnings
	if d.aside != nil {
		c.UseAside(d.aside)
		return copier.MySQLHolding{MySQL: c}, nil
	}
	return c, nil
}

func (d *mysqlDialect) NewApplier() (engine.Applier, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	a := apply.NewMySQL(d.db, plan)
	a.PanicOnWarnings = d.conn.PanicOnWarnings
	a.UseAside(d.aside)
	return a, nil
}

// NewChecksum returns the checksum of the original against the shadow,
// with the cut-over's lock settings.
func (d *mysqlDialect) NewChecksum() (engine.Checksum, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	return checksum.NewMySQL(d.db, plan, checksum.Options{
		LockTimeout: d.cfg.CutOverLockTimeout,
		Retries:     d.cfg.CutOverRetries,
		Log:         d.log,

		PanicOnWarnings: d.conn.PanicOnWarnings,
	})
}

func (d *mysqlDialect) CutOver(ctx context.Context, ready, drain func(context.Context) error, attempted func(time.Duration)) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if err := d.dropResumedSentry(ctx, plan); err != nil {
		return err
	}
	fks, fkNames, err := d.carriedForeignKeys()
	if err != nil {
		return err
	}
	err = cutover.MySQL(ctx, d.db, cutover.MySQLOptions{
		Schema:      plan.Source.Schema,
		Table:       plan.Source.Name,
		Shadow:      plan.Shadow.Name,
		Old:         plan.OldName,
		LockTimeout: d.cfg.CutOverLockTimeout,
		Retries:     d.cfg.CutOverRetries,
		Attempted:   attempted,
		Log:         d.log,

		ForeignKeys:     fks,
		ForeignKeyNames: fkNames,
		Triggers:        d.carriedTriggers(),

		CarryAutoIncrement: plan.CarryAutoIncrement,
		SetsAutoIncrement:  plan.SetsAutoIncrement,
		SetAutoIncrement:   plan.SetAutoIncrement,
	}, ready, drain)
	if err == nil {
		d.noteSwap(ctx)
	}
	return err
}

func (d *mysqlDialect) Cleanup(ctx context.Context, cutOver bool) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if d.db == nil {
		return errors.New("mysql: cleanup without a connection")
	}
	schema := plan.Source.Schema
	var errs []error
	// The checkpoint table goes last: while it is there, what is left
	// can be resumed or is reported as this migration's.
	dropCheckpoint := func() {
		if len(errs) == 0 {
			drop := table.DropMySQLTable(ctx, d.db, schema, table.MySQLCheckpointName(plan.Source.Name))
			errs = append(errs, drop)
		}
	}
	drop := func(name, what string) bool {
		if err := table.DropMySQLTable(ctx, d.db, schema, name); err != nil {
			errs = append(errs, err)
			return false
		}
		d.log.Info("dropped "+what, "table", schema+"."+name)
		return true
	}
	if plan.ChangelogName != "" {
		drop(plan.ChangelogName, "changelog table")
	}
	dropAside := func() {
		if len(plan.NewUnique) > 0 || d.asideLeft {
			drop(table.MySQLAsideName(plan.Source.Name), "aside table")
		}
	}
	if cutOver {
		dropAside()
		fks, trgs := d.carriedNames(ctx, schema, plan.OldName)
		if d.cfg.OkToDropTable {
			drop(plan.OldName, "old table")
		} else {
			d.log.Info("the original table is kept", "table", schema+"."+plan.OldName)
			d.dropOldForeignKeys(ctx, schema, plan.OldName)
			d.dropOldTriggers(ctx, schema, plan.OldName)
		}
		// The names are free now: the new table takes them back.
		d.ownNames(ctx, schema, plan.Source.Name, fks, trgs)
		dropCheckpoint()
		return errors.Join(errs...)
	}
	if !drop(plan.Shadow.Name, "shadow table") {
		// A cut-over RENAME that osc could not kill may still be queued: the
		// sentry makes it fail, so it stays while the shadow does, and so
		// do the aside table and the checkpoint, which a resume of the
		// shadow needs.
		return errors.Join(errs...)
	}
	dropAside()
	if err := cutover.DropMySQLSentry(ctx, d.db, schema, plan.OldName); err != nil {
		errs = append(errs, err)
	}
	dropCheckpoint()
	return errors.Join(errs...)
}

// Throttle measures through the changelog table's heartbeat row and the
// replicas registered with the primary.
func (d *mysqlDialect) Throttle() (throttle.Probe, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	if d.db == nil {
		return nil, errors.New("mysql: Throttle before a successful Inspect")
	}
	return probe.NewMySQL(d.db, d.conn, plan.Source.Schema, plan.ChangelogName, d.serverID(), d.log), nil
}

// Retryable: a deadlock, a lock wait timeout or an interrupted statement
// (table.MySQLTransient).
func (d *mysqlDialect) Retryable(err error) bool { return table.MySQLTransient(err) }

func (d *mysqlDialect) Driver() string { return "mysql" }

// CountRows counts the original's rows in a consistent read of its own.
// When ctx ends first, the count is killed (stopCountOnServer) and
// CountRows returns once it ended: the driver would only drop the
// connection, and the server would go on counting, holding the table's
// metadata lock, which the cut-over's lock waits for (and the writers
// behind it).
func (d *mysqlDialect) CountRows(ctx context.Context) (int64, error) {
	plan, err := d.made()
	if err != nil {
		return 0, err
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	defer conn.Close()
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		stopCountOnServer(ctx, done, func(ctx context.Context) error {
			_, err := d.db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
			return err
		}, d.log, id)
	}()
	var n int64
	err = conn.QueryRowContext(context.WithoutCancel(ctx), "SELECT COUNT(*) FROM "+table.QuoteMySQL(plan.Source.Schema, plan.Source.Name)).Scan(&n)
	close(done)
	<-stopped
	if ctx.Err() != nil {
		// A kill that came after the count may still be pending in its
		// session: the connection is not for another use.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, ctx.Err())
		}
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	return n, nil
}

// ParseReplicas takes host:port entries only.
func (d *mysqlDialect) ParseReplicas(list string) ([]string, error) {
	return throttle.ParseReplicas(list, false)
}

// DisplayReplica: a host:port entry holds no secret.
func (d *mysqlDialect) DisplayReplica(entry string) string { return entry }

func (d *mysqlDialect) Close() error {
	var errs []error
	if d.lock != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, d.lock.Release(ctx))
		d.lock = nil
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
		d.db = nil
	}
	return errors.Join(errs...)
}
