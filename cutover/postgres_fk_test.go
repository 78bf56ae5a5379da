package cutover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"osc/internal/testdb"
	"osc/table"
)

// A foreign key the --alter adds is checked before the swap: a violating row
// fails the cut-over and leaves the original in place.
func TestPostgresCutOverForeignKeyChecked(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"INSERT INTO parent SELECT generate_series(1, 5)",
		"CREATE TABLE child (id int PRIMARY KEY, p int)",
		"INSERT INTO child SELECT i, i FROM generate_series(1, 6) i",
	)
	sh := pgTestShadow(t, pool, "child", "ADD CONSTRAINT child_p_fk FOREIGN KEY (p) REFERENCES pgcut_test.parent")
	if len(sh.ForeignKeys) != 1 || sh.ForeignKeys[0].Check == nil {
		t.Fatalf("foreign keys %+v: want one, checked before the cut-over", sh.ForeignKeys)
	}
	oldOID := pgQuery[uint32](t, pool, "SELECT 'pgcut_test.child'::regclass::oid")
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{LockTimeout: time.Second, Retries: 2, ForeignKeys: sh.ForeignKeys}, nil,
		func(context.Context) error { t.Error("drained: the check should have failed first"); return nil })
	var v *table.PostgresForeignKeyViolation
	if !errors.As(err, &v) || v.Name != "child_p_fk" || v.Key != "6" || v.Columns != "p" {
		t.Fatalf("cut-over: %v, want the violation of child_p_fk by key (p)=(6)", err)
	}
	if oid := pgQuery[uint32](t, pool, "SELECT 'pgcut_test.child'::regclass::oid"); oid != oldOID {
		t.Error("the tables were swapped")
	}
}

// A row that breaks the key after the check (here: applied by the drain)
// fails the validation after the swap: the cut-over returns a
// PostgresNotValidError and the new table keeps the key NOT VALID.
func TestPostgresCutOverForeignKeyNotValid(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"INSERT INTO parent SELECT generate_series(1, 5)",
		"CREATE TABLE child (id int PRIMARY KEY, p int)",
		"INSERT INTO child SELECT i, i FROM generate_series(1, 5) i",
	)
	sh := pgTestShadow(t, pool, "child", "ADD CONSTRAINT child_p_fk FOREIGN KEY (p) REFERENCES pgcut_test.parent")
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{LockTimeout: time.Second, Retries: 2, ForeignKeys: sh.ForeignKeys}, nil,
		func(ctx context.Context) error {
			_, err := pool.Exec(ctx, "INSERT INTO pgcut_test._child_osc VALUES (7, 9)")
			return err
		})
	var nv *PostgresNotValidError
	if !errors.As(err, &nv) {
		t.Fatalf("cut-over: %v, want a PostgresNotValidError", err)
	}
	for _, want := range []string{"the tables were swapped", "child_p_fk", `ALTER TABLE "pgcut_test"."child" VALIDATE CONSTRAINT "child_p_fk"`, `"pgcut_test"."_child_old"`, "Key (p)=(9) is not present"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if valid := pgQuery[bool](t, pool, "SELECT convalidated FROM pg_constraint WHERE conname = 'child_p_fk' AND conrelid = 'pgcut_test.child'::regclass"); valid {
		t.Error("child_p_fk is validated")
	}
	if n := pgQuery[int64](t, pool, "SELECT count(*) FROM pgcut_test.child"); n != 6 {
		t.Errorf("the new table has %d rows, want 6", n)
	}
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "DELETE FROM child WHERE id = 7", "ALTER TABLE child VALIDATE CONSTRAINT child_p_fk")
}

// Writers that delete rows of the original, which a foreign key of another
// table references, check that table while they hold the original: an
// attempt that holds the referencing table and waits for the original
// closes a cycle with each of them (here every attempt that takes the
// referencing table first, as the writers' transactions hold the original
// while they sleep). The attempts alternate their order: the second,
// original first, swaps, and no writer fails.
func TestPostgresCutOverParentDeletes(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE par (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"INSERT INTO par (id) SELECT generate_series(1, 30000)",
		"CREATE TABLE kid (id int PRIMARY KEY, p int REFERENCES par)",
	)
	sh := pgTestShadow(t, pool, "par", "ADD COLUMN c int")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var deletes atomic.Int64
	errs := make(chan error, 3)
	for n := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "UPDATE pgcut_test.par SET v = v + 1 WHERE id = $1", n+1); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.02)"); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "DELETE FROM pgcut_test.par WHERE id = $1", 10+3*i+n)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", n, err)
					return
				}
				deletes.Add(1)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	attempts := 0
	err := Postgres(ctx, pool, sh.Plan, PostgresOptions{LockTimeout: 2 * time.Second, Retries: 4,
		Attempted: func(time.Duration) { attempts++ }}, nil, func(context.Context) error { return nil })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err != nil {
		t.Fatalf("cut-over under deletes of referenced rows: %v", err)
	}
	if deletes.Load() == 0 {
		t.Error("the writers deleted nothing")
	}
	if !pgQuery[bool](t, pool, "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgcut_test.par'::regclass AND attname = 'c')") {
		t.Error("the tables were not swapped")
	}
	t.Logf("swapped at attempt %d", attempts)
}
