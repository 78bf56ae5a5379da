package dialect

import (
	"context"
	"errors"
	"strings"
	"time"

	"osc/cutover"
	"osc/engine"
	"osc/table"
)

var _ interface {
	Native(context.Context) (string, string, error)
	RunNative(context.Context, time.Duration, int) error
} = (*postgresDialect)(nil)

// Native reports whether the --alter can run natively, and how
// (table.PostgresNativePlan).
func (d *postgresDialect) Native(ctx context.Context) (stmt, why string, err error) {
	if d.insp == nil {
		return "", "", errors.New("postgres: Native before a successful Inspect")
	}
	d.native, why, err = table.PostgresNativePlan(ctx, d.pool, d.insp, d.cfg.Alter, d.cfg.CutOverLockTimeout)
	if d.native == nil {
		return "", why, err
	}
	return strings.Join(d.native.Describe(), "; then "), "", nil
}

// RunNative runs the plan Native made (table.RunPostgresNative). Before each
// attempt it cancels an autovacuum of the table, as the cut-over does: the
// server would cancel it for the lock only after deadlock_timeout, and every
// attempt would time out behind it meanwhile.
func (d *postgresDialect) RunNative(ctx context.Context, lockTimeout time.Duration, retries int) error {
	if d.native == nil {
		return errors.New("postgres: RunNative without a native plan (Native)")
	}
	src := &table.Table{Schema: d.names.Schema, Name: d.names.Table}
	// No shadow: to_regclass finds nothing by its name.
	plan := &table.Plan{Source: src, Shadow: &table.Table{Schema: d.names.Schema, Name: d.names.Shadow}}
	unchanged, err := table.RunPostgresNative(ctx, d.pool, d.native, table.PostgresNativeRun{
		LockTimeout: lockTimeout, Retries: retries,
		BeforeAttempt: func(ctx context.Context) error { return cutover.CancelPostgresAutovacuum(ctx, d.pool, plan, d.log) },
		Log:           func(msg string) { d.log.Info(msg) },
	})
	if unchanged && table.PostgresRefused(err) {
		// The server refused a statement; what the steps before did is undone.
		return &engine.NativeRejectedError{Err: err}
	}
	return err
}
