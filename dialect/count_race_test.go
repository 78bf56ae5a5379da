package dialect

import (
	"context"
	"database/sql"
	"runtime"
	"testing"
	"time"

	"osc/engine"
)

// The count's context may end at any moment, also after CountRows learnt
// its session's id and before the count's statement reached the server. A
// KILL QUERY or pg_cancel_backend that reaches an idle session is dropped
// (MariaDB, MySQL and PostgreSQL all ignore it), so the count that follows
// runs to its end: CountRows, and the migration's stop of it at the copy's
// end, then wait for the whole count, holding the table's lock. The tests
// end the context at many moments around the count's start while another
// session locks the table, so that a count that started is seen waiting;
// every CountRows must return soon after its context ended.

// countStopRace calls count with contexts ended after delays spread over
// the first milliseconds, and fails when one does not return within 3
// seconds of its context's end; release lets a stuck count go on.
func countStopRace(t *testing.T, count func(context.Context) (int64, error), release func()) {
	t.Helper()
	// With one thread for the test's goroutines the stop overtakes the
	// count more often. Without the repeated stop, a count ran on in 3 of
	// 5 runs on MariaDB and 4 of 5 on PostgreSQL (the sandbox's): the
	// window is a fraction of a millisecond, so a pass proves less than a
	// failure.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const rounds = 2000
	for i := range rounds {
		delay := time.Duration(i%200) * 10 * time.Microsecond
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			_, _ = count(ctx)
		}()
		time.Sleep(delay)
		cancel()
		select {
		case <-returned:
		case <-time.After(3 * time.Second):
			release()
			<-returned
			t.Fatalf("round %d: CountRows did not return within 3s of its context's end (ended %v after the call): its count ran on", i, delay)
		}
	}
}

func TestMySQLCountRowsStopRace(t *testing.T) {
	const name = "tbl_count_race"
	db := mysqlTestDB(t, name)
	mustExec(t, db, "CREATE TABLE "+name+" (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO "+name+" SELECT seq FROM seq_1_to_100")
	ctx := context.Background()
	d, err := NewMySQL(engine.Config{Schema: mysqlTestSchema, Table: name, Alter: "ADD COLUMN w INT"}, mysqlTestConn(t), nil)
	d = madeDialect(t, d, err)
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	lock := func(c *sql.Conn) {
		if _, err := c.ExecContext(ctx, "LOCK TABLES "+name+" WRITE"); err != nil {
			t.Fatal(err)
		}
	}
	lock(holder)
	defer holder.ExecContext(ctx, "UNLOCK TABLES") //nolint:errcheck // the connection closes next
	countStopRace(t, d.CountRows, func() {
		if _, err := holder.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			t.Error(err)
		}
	})
}

func TestPostgresCountRowsStopRace(t *testing.T) {
	const name = "count_race"
	pool := pgEngineDB(t, "CREATE TABLE count_race (id int PRIMARY KEY)", "INSERT INTO count_race SELECT generate_series(1, 100)")
	ctx := context.Background()
	d, err := NewPostgres(engine.Config{Schema: pgEngineSchema, Table: name, Alter: "ADD COLUMN w int"}, PostgresOptions{DSN: pgEngineDSN()}, nil)
	d = madeDialect(t, d, err)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // releases the lock
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgEngineSchema+"."+name+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	countStopRace(t, d.CountRows, func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
	})
}
