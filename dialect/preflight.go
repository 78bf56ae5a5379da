package dialect

import (
	"context"
	"errors"
	"time"

	"osc/engine"
	"osc/probe"
	"osc/table"
)

// preflightTransactions is how many of the oldest open transactions the
// preflight report lists.
const preflightTransactions = 3

// sampleWrites reads a write counter, waits sample, reads it again, and
// returns the rate (nothing when sample is 0).
func sampleWrites(ctx context.Context, sample time.Duration, read func(context.Context) (int64, error)) (float64, time.Duration, error) {
	if sample <= 0 {
		return 0, 0, nil
	}
	first, err := read(ctx)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(sample):
	}
	last, err := read(ctx)
	if err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	return float64(max(last-first, 0)) / took.Seconds(), took.Round(100 * time.Millisecond), nil
}

// unread records in the report that the server did not tell the fact of
// line (a missing privilege, say), and returns err only when ctx ended.
func unread(ctx context.Context, r *engine.Preflight, line string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	if r.Unread == nil {
		r.Unread = map[string]string{}
	}
	r.Unread[line] = err.Error()
	return nil
}

func transactions(ts []table.OpenTransaction) []engine.OpenTransaction {
	out := make([]engine.OpenTransaction, len(ts))
	for i, t := range ts {
		out[i] = engine.OpenTransaction{ID: t.ID, Who: t.Who, Age: t.Age, Holds: t.Holds}
	}
	return out
}

// Preflight reports the table and the server (engine.Preflight).
func (d *mysqlDialect) Preflight(ctx context.Context, sample time.Duration) (*engine.Preflight, error) {
	if d.db == nil {
		return nil, errors.New("mysql: Preflight before a successful Inspect")
	}
	schema, name := d.cfg.Schema, d.cfg.Table
	r := &engine.Preflight{ChangeLog: "binlog"}
	var version string
	if err := d.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, err
	}
	r.Server = version
	if d.flavor == "mysql" {
		r.Server = "MySQL " + version
	}
	size, err := table.ReadMySQLTableSize(ctx, d.db, schema, name)
	if err != nil {
		return nil, err
	}
	r.Rows, r.DataBytes, r.IndexBytes = size.Rows, size.Data, size.Indexes
	var scope string
	r.Writes, r.WritesOver, err = sampleWrites(ctx, sample, func(ctx context.Context) (n int64, err error) {
		n, scope, err = table.ReadMySQLRowsWritten(ctx, d.db, schema, name)
		return n, err
	})
	r.WritesScope = scope
	if err := unread(ctx, r, "writes now", err); err != nil {
		return nil, err
	}
	ts, err := table.ReadMySQLTransactions(ctx, d.db, preflightTransactions)
	r.Transactions = transactions(ts)
	if err := unread(ctx, r, "transactions", err); err != nil {
		return nil, err
	}
	r.Retention, err = table.ReadMySQLBinlogRetention(ctx, d.db)
	if err := unread(ctx, r, "change log", err); err != nil {
		return nil, err
	}
	p := probe.NewMySQL(d.db, d.conn, schema, "", d.serverID(), d.log)
	defer p.Close()
	r.Replicas = p.Replicas(ctx)
	if d.insp != nil {
		r.ForeignKeys, r.Triggers = d.insp.ForeignKeys, d.insp.Triggers
	}
	return r, nil
}

// Preflight reports the table and the server (engine.Preflight).
func (d *postgresDialect) Preflight(ctx context.Context, sample time.Duration) (*engine.Preflight, error) {
	if d.pool == nil {
		return nil, errors.New("postgres: Preflight before a successful Inspect")
	}
	schema, name := d.cfg.Schema, d.cfg.Table
	r := &engine.Preflight{ChangeLog: "WAL"}
	var version string
	if err := d.pool.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version')").Scan(&version); err != nil {
		return nil, err
	}
	r.Server = version
	size, err := table.ReadPostgresTableSize(ctx, d.pool, schema, name)
	if err != nil {
		return nil, err
	}
	r.Rows, r.DataBytes, r.IndexBytes = size.Rows, size.Data, size.Indexes
	r.Writes, r.WritesOver, err = sampleWrites(ctx, sample, func(ctx context.Context) (int64, error) {
		return table.ReadPostgresRowsWritten(ctx, d.pool, schema, name)
	})
	r.WritesScope = "the table"
	if err := unread(ctx, r, "writes now", err); err != nil {
		return nil, err
	}
	ts, err := table.ReadPostgresTransactions(ctx, d.pool, schema, name, preflightTransactions)
	r.Transactions = transactions(ts)
	if err := unread(ctx, r, "transactions", err); err != nil {
		return nil, err
	}
	r.Retention, err = table.ReadPostgresWALRetention(ctx, d.pool)
	if err := unread(ctx, r, "change log", err); err != nil {
		return nil, err
	}
	r.Replicas, err = table.ReadPostgresStandbys(ctx, d.pool)
	if err := unread(ctx, r, "replicas", err); err != nil {
		return nil, err
	}
	return r, nil
}
