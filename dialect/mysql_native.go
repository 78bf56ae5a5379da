package dialect

import (
	"context"
	"errors"

	"osc/engine"
	"osc/probe"
	"osc/table"
	"osc/throttle"
)

// Native reports whether the server can carry out the --alter without
// copying the table (table.MySQLNativeStatement).
func (d *mysqlDialect) Native(ctx context.Context) (stmt, why string, err error) {
	if d.insp == nil {
		return "", "", errors.New("mysql: Native before a successful Inspect")
	}
	return table.MySQLNativeStatement(ctx, d.db, d.insp, d.flavor == "mariadb")
}

// RunNative runs it (table.RunMySQLNative).
func (d *mysqlDialect) RunNative(ctx context.Context, o engine.NativeRun) error {
	if d.insp == nil {
		return errors.New("mysql: RunNative before a successful Inspect")
	}
	err := table.RunMySQLNative(ctx, d.db, d.insp, d.flavor == "mariadb", table.MySQLNativeRun{
		LockTimeout: o.LockTimeout, Retries: o.Retries, BeforeAttempt: o.BeforeAttempt})
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
