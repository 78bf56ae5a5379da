package dialect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"osc/cutover"
	"osc/engine"
	"osc/table"
	"osc/throttle"
)

// The native path's methods (engine's nativeDialect).
var _ interface {
	Native(context.Context) (*engine.NativePlan, error)
	RunNative(context.Context, engine.NativeRun) error
	NativeThrottle() (throttle.Probe, error)
} = (*postgresDialect)(nil)

// Native reports whether the --alter can run natively, and how
// (table.PostgresNativePlan).
func (d *postgresDialect) Native(ctx context.Context) (*engine.NativePlan, error) {
	if d.insp == nil {
		return nil, errors.New("postgres: Native before a successful Inspect")
	}
	plan, why, err := table.PostgresNativePlan(ctx, d.pool, d.insp, d.cfg.Alter, d.cfg.CutOverLockTimeout)
	if err != nil {
		return nil, err
	}
	np := &engine.NativePlan{Why: why}
	if plan == nil {
		return np, nil
	}
	for _, c := range plan.Clauses {
		np.Clauses = append(np.Clauses, engine.ClausePlan{Clause: c.Text, Path: c.Path, Detail: c.Detail})
	}
	if plan.Steps == nil {
		return np, nil
	}
	d.native = plan
	for _, s := range plan.Steps {
		np.Steps = append(np.Steps, engine.NativeStep{SQL: strings.Join(s.SQL, "; "), Lock: s.Lock, BlocksWriters: s.Blocking, Reads: !s.Blocking})
	}
	return np, nil
}

// RunNative runs the plan Native made (table.RunPostgresNative). Before each
// attempt it cancels an autovacuum of the table, as the cut-over does: the
// server would cancel it for the lock only after deadlock_timeout, and every
// attempt would time out behind it meanwhile.
func (d *postgresDialect) RunNative(ctx context.Context, o engine.NativeRun) error {
	if d.native == nil {
		return errors.New("postgres: RunNative without a native plan (Native)")
	}
	src := &table.Table{Schema: d.names.Schema, Name: d.names.Table}
	// No shadow: to_regclass finds nothing by its name.
	plan := &table.Plan{Source: src, Shadow: &table.Table{Schema: d.names.Schema, Name: d.names.Shadow}}
	unchanged, err := table.RunPostgresNative(ctx, d.pool, d.native, table.PostgresNativeRun{
		LockTimeout: o.LockTimeout, Retries: o.Retries,
		BeforeAttempt: func(ctx context.Context) error {
			if o.BeforeAttempt != nil {
				if err := o.BeforeAttempt(ctx); err != nil {
					return err
				}
			}
			return cutover.CancelPostgresAutovacuum(ctx, d.pool, plan, d.log)
		},
		Step: func(i, n int, sql string) {
			if n > 1 {
				d.log.Info(fmt.Sprintf("native step %d of %d: %s", i, n, sql))
			}
			if o.Step != nil {
				o.Step(i, n, sql)
			}
		},
	})
	if unchanged && table.PostgresRefused(err) {
		// The server refused a statement; what the steps before did is undone.
		return &engine.NativeRejectedError{Err: err}
	}
	return err
}

// NativeThrottle is the throttle's probe (its heartbeats are WAL messages:
// no table needed).
func (d *postgresDialect) NativeThrottle() (throttle.Probe, error) { return d.Throttle() }
