package dialect

import (
	"context"
	"errors"

	"osc/engine"
	"osc/probe"
	"osc/table"
	"osc/throttle"
)

// The native path's methods (engine's nativeDialect).
var _ interface {
	Native(context.Context) (*engine.NativePlan, error)
	RunNative(context.Context, engine.NativeRun) error
	NativeThrottle() (throttle.Probe, error)
} = (*mysqlDialect)(nil)

// Native reports whether the server can carry out the --alter without
// copying the table (table.MySQLNativeStatement).
func (d *mysqlDialect) Native(ctx context.Context) (*engine.NativePlan, error) {
	if d.insp == nil {
		return nil, errors.New("mysql: Native before a successful Inspect")
	}
	stmt, why, clauses, err := table.MySQLNativeStatement(ctx, d.db, d.insp, d.flavor == "mariadb")
	if err != nil {
		return nil, err
	}
	np := &engine.NativePlan{Why: why}
	for _, c := range clauses {
		cp := engine.ClausePlan{Clause: c.Text, Path: engine.PathMetadata, Detail: "ALGORITHM=INSTANT"}
		if c.Why != "" {
			cp.Path, cp.Detail = engine.PathCopy, c.Why
		}
		np.Clauses = append(np.Clauses, cp)
	}
	if stmt != "" {
		np.Steps = []engine.NativeStep{{SQL: stmt, Lock: "metadata lock, exclusive for an instant", BlocksWriters: true}}
	}
	return np, nil
}

// RunNative runs it (table.RunMySQLNative).
func (d *mysqlDialect) RunNative(ctx context.Context, o engine.NativeRun) error {
	if d.insp == nil {
		return errors.New("mysql: RunNative before a successful Inspect")
	}
	err := table.RunMySQLNative(ctx, d.db, d.insp, d.flavor == "mariadb", table.MySQLNativeRun{
		LockTimeout: o.LockTimeout, Retries: o.Retries, BeforeAttempt: o.BeforeAttempt, Step: o.Step})
	if table.MySQLRefused(err) {
		// The server refused the statement: it changed nothing.
		return &engine.NativeRejectedError{Err: err}
	}
	return err
}

// NativeThrottle is the throttle's probe without a changelog table: the
// replicas' lag is what they report (Seconds_Behind_Master).
func (d *mysqlDialect) NativeThrottle() (throttle.Probe, error) {
	if d.db == nil {
		return nil, errors.New("mysql: NativeThrottle before a successful Inspect")
	}
	return probe.NewMySQL(d.db, d.conn, d.cfg.Schema, "", d.serverID(), d.log), nil
}
