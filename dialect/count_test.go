package dialect

import (
	"context"
	"testing"
	"time"

	"osc/engine"
)

// The count of --exact-rowcount runs alongside the copy and is stopped when
// the copy ends. Its statement holds the table's lock that the cut-over's
// lock waits for (MySQL's metadata lock, PostgreSQL's ACCESS SHARE), so a count that ctx ends must end on the server too, not
// only be abandoned by the driver. The tests make the count wait on a lock
// another session holds, end ctx, and look for the count's statement.

// madeDialect runs d's Inspect and CreateShadow (err is its constructor's),
// and cleans up and closes it when the test ends.
func madeDialect(t *testing.T, d engine.Dialect, err error) engine.Dialect {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		_ = d.Cleanup(ctx, false) // the test's schema goes with what is left
		_ = d.Close()
	})
	if err := d.Inspect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMySQLCountRowsStopsItsStatement(t *testing.T) {
	const name = "tbl_count_rows"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+name+" SELECT seq FROM seq_1_to_1234")
	ctx := context.Background()
	d, err := NewMySQL(engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT"}, mysqlTestConn(t), nil)
	d = madeDialect(t, d, err)
	if n, err := d.CountRows(ctx); err != nil || n != 1234 {
		t.Fatalf("CountRows: %d, %v; want 1234", n, err)
	}

	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "LOCK TABLES "+name+" WRITE"); err != nil {
		t.Fatal(err)
	}
	defer holder.ExecContext(ctx, "UNLOCK TABLES") //nolint:errcheck // the connection closes next
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.CountRows(cctx); err == nil {
		t.Fatal("CountRows returned a count while the table was locked")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("CountRows returned %v after its context ended", waited)
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
		WHERE INFO LIKE 'SELECT COUNT(*) FROM %' AND INFO LIKE ?`, "%"+name+"%").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("after CountRows returned, the server still runs its count (%d statement(s))", left)
	}
}

func TestPostgresCountRowsStopsItsStatement(t *testing.T) {
	const name = "count_rows"
	pool := pgEngineDB(t, "CREATE TABLE count_rows (id int PRIMARY KEY)", "INSERT INTO count_rows SELECT generate_series(1, 1234)")
	ctx := context.Background()
	d, err := NewPostgres(engine.Config{Schema: pgEngineSchema, Table: name, Alter: "ADD COLUMN w int"}, PostgresOptions{DSN: pgEngineDSN()}, nil)
	d = madeDialect(t, d, err)
	if n, err := d.CountRows(ctx); err != nil || n != 1234 {
		t.Fatalf("CountRows: %d, %v; want 1234", n, err)
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // releases the lock
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgEngineSchema+"."+name+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.CountRows(cctx); err == nil {
		t.Fatal("CountRows returned a count while the table was locked")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("CountRows returned %v after its context ended", waited)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE 'SELECT count(*) FROM %' AND query LIKE $1 AND pid <> pg_backend_pid()`,
		"%"+name+"%").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("after CountRows returned, the server still runs its count (%d statement(s))", left)
	}
}
