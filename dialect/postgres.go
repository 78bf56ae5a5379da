package dialect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// postgresDialect is the Dialect of PostgreSQL: logical replication (pgoutput)
// capture, ON CONFLICT DO NOTHING chunks, upsert/delete apply, and a
// one-transaction rename cut-over.
type postgresDialect struct {
	cfg   engine.Config
	opts  PostgresOptions
	log   *slog.Logger
	names table.PostgresNames

	pool   *pgxpool.Pool
	lock   *table.PostgresLock
	insp   *table.PostgresInspection
	shadow *table.PostgresShadow
	// native is how the --alter runs natively (Native).
	native *table.PostgresNative
	// swapped is a cut-over that failed after swapping the tables
	// (cutover.PostgresNotValidError): Cleanup keeps the old table.
	swapped bool

	// src is the change capture NewSource made; checkpoints carry the
	// identity its publication had when it started.
	src *cdc.PostgresSource
	// resumeFrom is the checkpoint's capture position when resuming;
	// resumed: the run resumes a killed one.
	resumeFrom string
	resumed    bool
	// resumedCutOver: Resume found the tables swapped by the killed run;
	// Cleanup drops its slot and publication too.
	resumedCutOver bool
	// cleanupOnly: with --resume, the killed run left its checkpoint table
	// but no shadow (it swapped the tables, or lost the shadow): Inspect
	// did not inspect the table, and Resume can only report the swap for
	// cleanup, or refuse.
	cleanupOnly bool
	// revert is the revert window's (postgres_revert.go).
	revert pgRevert
}

var _ engine.Dialect = (*postgresDialect)(nil)

// PostgresOptions are the settings only PostgreSQL has.
type PostgresOptions struct {
	// DSN is a libpq URL or key=value string ("" uses the PG* environment
	// variables).
	DSN string
	// MaxRetainedWAL throttles the copy while the change capture's slot
	// retains more WAL than this many bytes (0: not checked).
	MaxRetainedWAL int64
}

// NewPostgres returns the PostgreSQL dialect for one migration. Without
// cfg.Schema, cfg.Table may be "schema.table"; the schema defaults to public.
// It connects in Inspect.
func NewPostgres(cfg engine.Config, opts PostgresOptions, log *slog.Logger) (engine.Dialect, error) {
	cfg.Defaults()
	if cfg.Schema == "" {
		cfg.Schema = "public"
		if s, t, ok := strings.Cut(cfg.Table, "."); ok {
			cfg.Schema, cfg.Table = s, t
		}
	}
	switch {
	case cfg.Table == "":
		return nil, errors.New("postgres: the table is required (--table)")
	case cfg.Schema == "":
		return nil, fmt.Errorf("postgres: the schema of %q is empty", "."+cfg.Table)
	case strings.TrimSpace(cfg.Alter) == "":
		return nil, errors.New("postgres: the --alter is empty")
	case opts.MaxRetainedWAL < 0:
		return nil, fmt.Errorf("postgres: max-retained-wal %d is negative", opts.MaxRetainedWAL)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &postgresDialect{cfg: cfg, opts: opts, log: log, names: table.NewPostgresNames(cfg.Schema, cfg.Table)}, nil
}

func (d *postgresDialect) Inspect(ctx context.Context) error {
	if d.pool == nil {
		pool, err := table.OpenPostgres(ctx, d.opts.DSN)
		if err != nil {
			return err
		}
		d.pool = pool
	}
	if d.names.Database == "" {
		var db string
		if err := d.pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
			return fmt.Errorf("postgres: read the database's name: %w", err)
		}
		d.names = d.names.InDatabase(db)
	}
	if d.lock == nil {
		lock, err := table.LockPostgres(ctx, d.pool, d.cfg.Schema, d.cfg.Table)
		if err != nil {
			return err
		}
		d.lock = lock
	}
	// The lock is held: no live osc owns what a killed run left.
	if err := d.initiallyDrop(ctx); err != nil {
		return err
	}
	if d.cfg.Resume {
		// After a swap the table is the altered one, which the refusals
		// of what osc cannot migrate do not concern (an --alter may make
		// what osc refuses to migrate: ENABLE ROW LEVEL SECURITY, SET
		// UNLOGGED), and refusing them would leave the killed run's slot
		// retaining WAL for good.
		left, err := table.ReadPostgresLeftover(ctx, d.pool, d.names)
		if err != nil {
			return err
		}
		if left.CheckpointTable && !left.Shadow {
			d.cleanupOnly = true
			d.log.Info("resuming: the killed run's shadow table is gone, so it swapped the tables (or lost the shadow): only cleanup is left",
				"table", d.cfg.Schema+"."+d.cfg.Table)
			return nil
		}
	}
	insp, err := table.InspectPostgresTableFor(ctx, d.pool, d.names, d.cfg.Resume)
	if err != nil {
		return err
	}
	d.insp = insp
	if err := d.warnRetainedWAL(ctx); err != nil {
		return err
	}
	d.log.Info("inspected", "server", insp.Server.Version, "table", d.cfg.Schema+"."+d.cfg.Table,
		"estimated rows", insp.EstimatedRows)
	return nil
}

func (d *postgresDialect) CreateShadow(ctx context.Context) (*engine.Plan, error) {
	if d.insp == nil {
		return nil, errors.New("postgres: CreateShadow before a successful Inspect")
	}
	create := table.CreatePostgresCheckpointed
	if d.cfg.NoCheckpoint {
		create = table.CreatePostgresShadow
	}
	sh, err := create(ctx, d.pool, d.insp, d.cfg.Alter, d.cfg.CutOverLockTimeout)
	if err != nil {
		return nil, err
	}
	d.shadow = sh
	if err := checkNewUnique(d.cfg, sh.Plan, func() error { return table.PostgresDuplicates(ctx, d.pool, sh.Plan) }); err != nil {
		if cerr := d.Cleanup(context.WithoutCancel(ctx), false); cerr != nil {
			err = errors.Join(err, cerr)
		}
		d.shadow = nil
		return nil, err
	}
	return enginePlan(sh.Plan), nil
}

// made returns the plan CreateShadow made.
func (d *postgresDialect) made() (*table.Plan, error) {
	if d.shadow == nil {
		return nil, errors.New("postgres: no plan: CreateShadow did not succeed")
	}
	return d.shadow.Plan, nil
}

func (d *postgresDialect) NewSource() (engine.Source, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	src, err := cdc.NewPostgres(cdc.PostgresConfig{DSN: d.opts.DSN, Slot: d.names.Slot, Publication: d.names.Publication,
		Permanent: !d.cfg.NoCheckpoint, ResumeFrom: d.resumeFrom, Log: d.log, PartitionRoot: len(d.shadow.Partitions) > 0}, d.pool, plan)
	if err != nil {
		return nil, err
	}
	d.src = src
	return src, nil
}

func (d *postgresDialect) NewCopier() (engine.Copier, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	return copier.NewPostgres(d.pool, plan).WithIndexes(d.shadow.Indexes), nil
}

func (d *postgresDialect) NewApplier() (engine.Applier, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	ap := apply.NewPostgres(d.pool, plan)
	if d.resumed {
		ap.Resumed()
	}
	return pgEnumApplier{Postgres: ap, pool: d.pool, labels: d.shadow.EnumLabels}, nil
}

// pgEnumApplier is the applier, whose failure says so when an enum value
// of the table's columns was renamed since the capture started: a change
// decoded before the rename carries the old label, which the type no
// longer accepts (table.PostgresEnumLabel).
type pgEnumApplier struct {
	*apply.Postgres
	pool   *pgxpool.Pool
	labels []table.PostgresEnumLabel
}

func (a pgEnumApplier) Apply(ctx context.Context, changes []cdc.Change) error {
	err := a.Postgres.Apply(ctx, changes)
	if err == nil || !table.PostgresRefused(err) {
		return err
	}
	if cerr := table.CheckPostgresEnumLabels(ctx, a.pool, a.labels); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// NewChecksum compares the shadow with the original before the cut-over,
// locking the original with the cut-over's lock timeout and attempts.
func (d *postgresDialect) NewChecksum() (engine.Checksum, error) {
	plan, err := d.made()
	if err != nil {
		return nil, err
	}
	return checksum.NewPostgres(d.pool, plan, checksum.Options{
		LockTimeout: d.cfg.CutOverLockTimeout, Retries: d.cfg.CutOverRetries, Log: d.log,
	}), nil
}

// BlockWrites blocks writes to the original, not reads, while hold runs,
// with the cut-over's lock timeout and attempts (cutover.BlockPostgresWrites).
func (d *postgresDialect) BlockWrites(ctx context.Context, hold func(context.Context) error) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	return cutover.BlockPostgresWrites(ctx, d.pool, plan, d.cfg.CutOverLockTimeout, d.cfg.CutOverRetries, d.log, hold)
}

func (d *postgresDialect) CutOver(ctx context.Context, ready, drain func(context.Context) error, attempted func(time.Duration)) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if err := d.startReverse(ctx); err != nil {
		return err
	}
	err = cutover.Postgres(ctx, d.pool, plan, cutover.PostgresOptions{
		LockTimeout:       d.cfg.CutOverLockTimeout,
		Retries:           d.cfg.CutOverRetries,
		ForeignKeys:       d.shadow.ForeignKeys,
		Checks:            d.shadow.Checks,
		Renames:           d.shadow.Renames,
		RestartedIdentity: d.shadow.RestartedIdentity,
		AlwaysIdentity:    d.shadow.AlwaysIdentity,
		OwnerSet:          d.shadow.OwnerSet,
		Publication:       d.names.Publication,
		SwapMessage:       d.revert.swap,
		Attempted:         attempted,
		Log:               d.log,
		Triggers:          d.shadow.Triggers,
		Partitions:        d.shadow.Partitions,
		SourceDefinition:  d.shadow.SourceDefinition,
		EnumLabels:        d.shadow.EnumLabels,
	}, ready, drain)
	var nv *cutover.PostgresNotValidError
	d.swapped = errors.As(err, &nv)
	if err != nil {
		d.stopReverse()
	}
	return err
}

// Cleanup drops the checkpoint table, the shadow unless the cut-over
// happened (after it, the shadow's name is gone: the new table has the
// original's), and the old table when the user asked for it, never
// cascading to other objects; after a resume that found the tables swapped,
// also the killed run's slot and publication.
func (d *postgresDialect) Cleanup(ctx context.Context, cutOver bool) error {
	plan, err := d.made()
	if err != nil {
		return err
	}
	if d.pool == nil {
		return errors.New("postgres: cleanup without a connection")
	}
	return errors.Join(d.dropBookkeeping(ctx), d.dropTable(ctx, plan, cutOver))
}

// dropTable drops the shadow, or after the cut-over the old table when the
// user asked for it.
func (d *postgresDialect) dropTable(ctx context.Context, plan *table.Plan, cutOver bool) error {
	schema := plan.Source.Schema
	if d.swapped {
		d.log.Info("the original table is kept: the migration did not complete", "table", schema+"."+plan.OldName)
		return nil
	}
	name, what := plan.Shadow.Name, "shadow table"
	if cutOver {
		if !d.cfg.OkToDropTable {
			d.log.Info("the original table is kept", "table", schema+"."+plan.OldName)
			return nil
		}
		name, what = plan.OldName, "old table"
	}
	if err := table.DropPostgresTable(ctx, d.pool, schema, name); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "2BP01" { // dependent_objects_still_exist
			return fmt.Errorf("%w (%s); drop or move those objects, then DROP TABLE %s", err, pgErr.Detail, table.QuotePostgres(schema, name))
		}
		return err
	}
	d.log.Info("dropped "+what, "table", schema+"."+name)
	return nil
}

// StartOver: PostgreSQL's decoding bug (cdc.DecodeMapBug) meets only the
// transactions open when a new slot became ready, which a new slot made
// later does not see; the migration starts over unless the tables were
// swapped. A resumed run does not: it was inspected as a resume, and what
// it resumed is gone once cleaned up (the error says to run osc again
// without --resume).
func (d *postgresDialect) StartOver(err error) bool {
	return !d.swapped && !d.resumed && cdc.DecodeMapBug(err)
}

// Throttle measures through WAL heartbeats, the standbys streaming from the
// primary and the retained WAL of the change capture's slot.
func (d *postgresDialect) Throttle() (throttle.Probe, error) {
	if d.pool == nil {
		return nil, errors.New("postgres: Throttle before a successful Inspect")
	}
	return probe.NewPostgres(d.pool, d.opts.DSN, d.names.Slot, d.log), nil
}

// Retryable: a deadlock, a serialization failure or a lock timeout
// (table.PostgresTransient).
func (d *postgresDialect) Retryable(err error) bool { return table.PostgresTransient(err) }

func (d *postgresDialect) Driver() string { return "postgres" }

// CountRows counts the original's rows (a partitioned table's, in all its
// partitions) in a snapshot of its own. When ctx ends first, the count is
// cancelled (stopCountOnServer) and CountRows returns once it ended: the
// driver would only drop the connection, and the server would go on
// counting, holding the ACCESS SHARE lock that the cut-over's lock waits for
// (and the writers behind it).
func (d *postgresDialect) CountRows(ctx context.Context) (int64, error) {
	plan, err := d.made()
	if err != nil {
		return 0, err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	defer conn.Release()
	var pid uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		stopCountOnServer(ctx, done, func(ctx context.Context) error {
			_, err := d.pool.Exec(ctx, "SELECT pg_cancel_backend($1)", pid)
			return err
		}, d.log, pid)
	}()
	var n int64
	err = conn.QueryRow(context.WithoutCancel(ctx), "SELECT count(*) FROM "+table.QuotePostgres(plan.Source.Schema, plan.Source.Name)).Scan(&n)
	close(done)
	<-stopped
	if ctx.Err() != nil {
		// A cancel that came after the count may still reach its
		// session: the connection is not for another use.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = conn.Conn().Close(cctx)
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, ctx.Err())
	}
	if err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", plan.Source.Name, err)
	}
	return n, nil
}

// ParseReplicas takes host:port entries and connection strings.
func (d *postgresDialect) ParseReplicas(list string) ([]string, error) {
	return throttle.ParseReplicas(list, true)
}

// DisplayReplica shows a connection string as its host:port.
func (d *postgresDialect) DisplayReplica(entry string) string { return probe.DisplayReplica(entry) }

// ThrottleSettings adds the retained-WAL threshold (--max-retained-wal).
func (d *postgresDialect) ThrottleSettings(s *throttle.Settings) []engine.Setting {
	s.MaxRetainedWAL = d.opts.MaxRetainedWAL
	return []engine.Setting{{Name: "max-retained-wal", Value: throttle.FormatBytes(d.opts.MaxRetainedWAL)}}
}

func (d *postgresDialect) Close() error {
	// A revert window's capture the engine did not take over (a cut-over
	// or a Reverse that failed), or closed already (Close again is a no-op).
	d.stopReverse()
	var errs []error
	if d.lock != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, d.lock.Release(ctx))
		d.lock = nil
	}
	if d.pool != nil {
		d.pool.Close()
		d.pool = nil
	}
	return errors.Join(errs...)
}
