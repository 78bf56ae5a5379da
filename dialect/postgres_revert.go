package dialect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"osc/apply"
	"osc/cdc"
	"osc/cutover"
	"osc/engine"
	"osc/table"
)

// pgRevert is the PostgreSQL dialect's part of a revert window: the reverse
// plan (PlanRevert) and the reverse capture, started right before the
// cut-over (startReverse).
type pgRevert struct {
	plan *table.PostgresRevert // nil: no revert window
	src  *cdc.PostgresSource   // the reverse capture, once started
	swap string                // the id of the cut-over's swap message
	// labels are the values of the enum types both tables' columns hold,
	// read before the reverse capture started: the revert's cut-over
	// refuses when one was renamed since (table.PostgresEnumLabel).
	labels []table.PostgresEnumLabel
}

// PlanRevert plans the reverse migration (table.PlanPostgresRevert) while
// the tables still have their names before the swap.
func (d *postgresDialect) PlanRevert(ctx context.Context) error {
	if d.shadow == nil {
		return errors.New("postgres: PlanRevert before CreateShadow")
	}
	// The cut-over carries the table's triggers to the new table; the
	// window's writes to the old table would fire its own again, and a
	// revert would not carry them back.
	if len(d.shadow.Triggers) > 0 {
		return fmt.Errorf("--revert-window: %s has triggers, which osc carries to the new table but not back to the old one yet: "+
			"migrate it without --revert-window", table.QuotePostgres(d.shadow.Plan.Source.Schema, d.shadow.Plan.Source.Name))
	}
	r, err := table.PlanPostgresRevert(ctx, d.pool, d.shadow)
	if err != nil {
		return err
	}
	d.revert.plan = r
	return nil
}

// startReverse, right before the cut-over of a migration with a revert
// window, creates the reverse capture's publication (of the shadow, which
// the table's name will name) and its slot, so that every change to the
// altered table after the swap is captured; what it decodes up to the swap
// (the forward applier's writes into the shadow) it skips, through the swap
// message the cut-over emits in its transaction. The slot is temporary:
// the window cannot be resumed, and a killed osc leaves only the
// publication.
func (d *postgresDialect) startReverse(ctx context.Context) error {
	if d.revert.plan == nil || d.revert.src != nil {
		return nil
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("postgres: swap message id: %w", err)
	}
	d.revert.swap = hex.EncodeToString(id)
	plan := d.shadow.Plan
	labels, err := table.ReadPostgresEnumLabels(ctx, d.pool, table.QuotePostgres(plan.Source.Schema, plan.Source.Name),
		table.QuotePostgres(plan.Shadow.Schema, plan.Shadow.Name))
	if err != nil {
		return fmt.Errorf("postgres: start the revert window's capture: %w", err)
	}
	d.revert.labels = labels
	name := d.names.ReverseCapture()
	src, err := cdc.NewPostgres(cdc.PostgresConfig{DSN: d.opts.DSN, Slot: name, Publication: name,
		SkipThrough: d.revert.swap, Log: d.log, PartitionRoot: len(d.shadow.Partitions) > 0}, d.pool, d.revert.plan.Capture)
	if err != nil {
		return err
	}
	if err := src.Start(ctx); err != nil {
		return fmt.Errorf("postgres: start the revert window's capture: %w", err)
	}
	d.revert.src = src
	return nil
}

// stopReverse drops the reverse capture after a cut-over that did not swap.
func (d *postgresDialect) stopReverse() {
	if d.revert.src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.revert.src.Close(ctx); err != nil {
		d.log.Warn("drop the revert window's capture", "err", err)
	}
	d.revert.src = nil
}

// Reverse returns the reverse migration, its capture started before the
// swap and skipping everything up to it.
func (d *postgresDialect) Reverse(ctx context.Context) (engine.Reverse, error) {
	r := d.revert.plan
	switch {
	case r == nil:
		return nil, errors.New("postgres: Reverse without PlanRevert")
	case d.revert.src == nil:
		return nil, errors.New("postgres: Reverse before the cut-over")
	}
	// The migration is done: a run killed from here on is not resumed.
	if err := table.DropPostgresTable(ctx, d.pool, d.names.Schema, d.names.Checkpoint); err != nil {
		return nil, err
	}
	renames, err := r.Renames(ctx, d.pool)
	if err != nil {
		return nil, err
	}
	parts, err := r.Partitions(ctx, d.pool)
	if err != nil {
		return nil, err
	}
	return &pgReverse{d: d, plan: r.Plan, src: d.revert.src, renames: renames, partitions: parts, fks: r.ForeignKeys,
		ap: apply.NewPostgresRevert(d.pool, r.Plan)}, nil
}

// pgReverse is the engine.Reverse of PostgreSQL.
type pgReverse struct {
	d       *postgresDialect
	plan    *table.Plan
	src     *cdc.PostgresSource
	renames []table.PostgresRename
	// partitions are the altered table's, each with its old partition's
	// name (table.PostgresRevert.Partitions).
	partitions []table.PostgresPartition
	fks        []table.PostgresForeignKey
	ap         *apply.PostgresRevert
}

// pgStarted is a source that startReverse started before the swap.
type pgStarted struct{ *cdc.PostgresSource }

func (pgStarted) Start(context.Context) error { return nil }

func (r *pgReverse) Source() engine.Source   { return pgStarted{r.src} }
func (r *pgReverse) Applier() engine.Applier { return r.ap }

func (r *pgReverse) Key() ([]int, []string) { return r.plan.KeyIndex, r.plan.Key }

// Unfit: the server refused the row's values (table.PostgresUnfit).
func (r *pgReverse) Unfit(err error) bool { return table.PostgresUnfit(err) }

// CutOver swaps back with the forward cut-over: the altered table goes to
// the shadow's name, the old table to the table's, taking back its objects'
// names, its own foreign keys (which the forward cut-over dropped from it),
// the views, the foreign keys referencing the table, the sequences, the
// grants and the comment; a partitioned table's partitions take their names
// back too. Foreign keys that do not validate after the swap
// stay NOT VALID, which the log says: the tables are swapped back.
func (r *pgReverse) CutOver(ctx context.Context, ready, drain func(context.Context) error) error {
	err := cutover.Postgres(ctx, r.d.pool, r.plan, cutover.PostgresOptions{
		LockTimeout: r.d.cfg.CutOverLockTimeout,
		Retries:     r.d.cfg.CutOverRetries,
		ForeignKeys: r.fks,
		Renames:     r.renames,
		Partitions:  r.partitions,
		Publication: r.d.names.ReverseCapture(),
		EnumLabels:  r.d.revert.labels,
		Log:         r.d.log,
	}, ready, drain)
	var nv *cutover.PostgresNotValidError
	if errors.As(err, &nv) {
		// The tables are swapped back; the keys check new rows.
		r.d.log.Warn("reverted, but foreign keys of the original table could not be validated", "err", err)
		return nil
	}
	return err
}

// Cleanup ends the window (the engine closed the reverse capture, dropping
// its slot and publication). Without a revert it is the forward
// migration's cleanup after a cut-over. After one, the altered table, now
// under the shadow's name, is dropped with --ok-to-drop-table, else kept.
func (r *pgReverse) Cleanup(ctx context.Context, reverted bool) error {
	if !reverted {
		return r.d.Cleanup(ctx, true)
	}
	d, schema := r.d, r.plan.Source.Schema
	if err := d.dropBookkeeping(ctx); err != nil {
		return fmt.Errorf("clean up after the revert: %w", err)
	}
	if !d.cfg.OkToDropTable {
		d.log.Info("the migrated table is kept; drop it when it is no longer needed", "table", schema+"."+r.plan.OldName)
		return nil
	}
	if err := table.DropPostgresTable(ctx, d.pool, schema, r.plan.OldName); err != nil {
		return fmt.Errorf("clean up after the revert: %w", err)
	}
	d.log.Info("dropped the migrated table", "table", schema+"."+r.plan.OldName)
	return nil
}
