package dialect

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"osc/engine"
	"osc/internal/testdb"
)

// preflightWrites updates rows of the table through write until stop is
// closed, and returns once the writer has ended.
func preflightWrites(t *testing.T, write func(ctx context.Context, i int) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := write(ctx, i); err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// checkPreflight checks what both databases report alike: the table's size
// within 10 %, the writes sampled, the open transaction held since before the
// report, and the sandbox's replica.
func checkPreflight(t *testing.T, r *engine.Preflight, rows int64, held time.Duration, txID, replica string) {
	t.Helper()
	if r.Rows < rows*9/10 || r.Rows > rows*11/10 {
		t.Errorf("rows %d, want %d within 10 %%", r.Rows, rows)
	}
	if r.DataBytes <= 0 || r.IndexBytes <= 0 {
		t.Errorf("data %d bytes, indexes %d bytes", r.DataBytes, r.IndexBytes)
	}
	if r.WritesOver < time.Second || r.Writes <= 0 {
		t.Errorf("writes %.1f rows/s over %s, want some over at least 1s", r.Writes, r.WritesOver)
	}
	found := false
	for _, tx := range r.Transactions {
		if tx.ID == txID {
			found = true
			if tx.Age < held {
				t.Errorf("transaction %s open for %s, want at least %s", txID, tx.Age, held)
			}
		}
	}
	if !found {
		t.Errorf("transactions %+v lack %s", r.Transactions, txID)
	}
	if !strings.Contains(strings.Join(r.Replicas, "; "), replica) {
		t.Errorf("replicas %q lack %s", r.Replicas, replica)
	}
	if r.Retention == "" || r.Server == "" {
		t.Errorf("retention %q, server %q", r.Retention, r.Server)
	}
}

// TestPreflightMySQL: the report reads the sandbox's table, the writes on it,
// a transaction left open and the replica.
func TestPreflightMySQL(t *testing.T) {
	const name, rows = "tbl_preflight", 5000
	db := mysqlTestDB(t, name)
	seedMySQL(t, db, name, rows)
	mustExec(t, db, "ALTER TABLE "+name+" ADD INDEX v (v)")
	mustExec(t, db, "ANALYZE TABLE "+name)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var thread string
	if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID() FROM "+name+" WHERE id = 1 FOR UPDATE").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	stop := preflightWrites(t, func(ctx context.Context, i int) error {
		_, err := db.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET v = v + 1 WHERE id = %d", name, 2+i%(rows-1)))
		return err
	})
	cfg := engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT"}
	dd, err := NewMySQL(cfg, mysqlTestConn(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*mysqlDialect)
	defer d.Close()
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	// trx_started has whole seconds: 2 s make the transaction one open
	// for a second or more.
	r, err := d.Preflight(ctx, 2*time.Second)
	held := time.Since(opened)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	checkPreflight(t, r, rows, held-time.Second, "thread "+thread, "13307")
	if !strings.Contains(r.Retention, "binlog") || r.ChangeLog != "binlog" {
		t.Errorf("change log %q, retention %q", r.ChangeLog, r.Retention)
	}
}

// TestPreflightPostgres: the report reads the sandbox's table, the writes on
// it, a transaction that holds a lock on it and the standby.
func TestPreflightPostgres(t *testing.T) {
	const name, rows = "tbl_preflight", 5000
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgEngineDSN())
	if err != nil {
		testdb.Unreachable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	writer, err := pgx.Connect(ctx, pgEngineDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close(ctx) })
	const schema = "osc_preflight"
	drop := func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	}
	drop()
	t.Cleanup(drop)
	for _, s := range []string{"CREATE SCHEMA " + schema,
		"CREATE TABLE " + schema + "." + name + " (id int PRIMARY KEY, v int)",
		"INSERT INTO " + schema + "." + name + fmt.Sprintf(" SELECT g, g FROM generate_series(1, %d) g", rows),
		"ANALYZE " + schema + "." + name} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid() FROM "+schema+"."+name+" WHERE id = 1").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	stop := preflightWrites(t, func(ctx context.Context, i int) error {
		_, err := writer.Exec(ctx, fmt.Sprintf("UPDATE %s.%s SET v = v + 1 WHERE id = %d", schema, name, 2+i%(rows-1)))
		return err
	})
	cfg := engine.Config{Schema: schema, Table: name, Alter: "ADD COLUMN w int"}
	dd, err := NewPostgres(cfg, PostgresOptions{DSN: pgEngineDSN(), MaxRetainedWAL: 1 << 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*postgresDialect)
	defer d.Close()
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	// Sessions report their writes at most once a second: sample for 3.
	r, err := d.Preflight(ctx, 3*time.Second)
	held := time.Since(opened)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	checkPreflight(t, r, rows, held-3*time.Second, fmt.Sprintf("pid %d", pid), "streaming")
	for _, tx := range r.Transactions {
		if tx.ID == fmt.Sprintf("pid %d", pid) && tx.Holds != "yes" {
			t.Errorf("transaction %+v: it holds a lock on the table", tx)
		}
	}
	if r.ChangeLog != "WAL" || !strings.Contains(r.Retention, "max_slot_wal_keep_size") {
		t.Errorf("change log %q, retention %q", r.ChangeLog, r.Retention)
	}
}
