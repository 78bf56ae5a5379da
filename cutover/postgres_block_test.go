package cutover

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestPostgresBlockWrites: while hold runs, a writer waits and a reader does
// not; the writer goes on once the block ends. A hold that runs out of time
// rolls the attempt back and is tried again; a writer's open transaction
// makes the lock wait time out and the attempt is tried again; after the
// attempts, the error says so.
func TestPostgresBlockWrites(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE blk (id int PRIMARY KEY, v int NOT NULL)", "INSERT INTO blk VALUES (1, 0)")
	sh := pgTestShadow(t, pool, "blk", "ADD COLUMN c int")
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	waiting := func() int {
		return pgQuery[int](t, pool, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pgcut_test.blk'::regclass")
	}

	wrote := make(chan error, 1)
	holds := 0
	err := BlockPostgresWrites(ctx, pool, sh.Plan, 500*time.Millisecond, 3, log, func(hctx context.Context) error {
		holds++
		if holds == 1 {
			// Runs out of time: the attempt rolls back.
			<-hctx.Done()
			return hctx.Err()
		}
		rctx, cancel := context.WithTimeout(hctx, 300*time.Millisecond)
		defer cancel()
		var v int
		if err := pool.QueryRow(rctx, "SELECT v FROM pgcut_test.blk WHERE id = 1").Scan(&v); err != nil {
			t.Errorf("a reader waited on the block: %v", err)
		}
		go func() {
			_, err := pool.Exec(ctx, "UPDATE pgcut_test.blk SET v = v + 1 WHERE id = 1")
			wrote <- err
		}()
		for waiting() == 0 {
			select {
			case err := <-wrote:
				t.Errorf("a writer did not wait on the block (err %v)", err)
				return nil
			case <-hctx.Done():
				t.Error("the writer never waited on the block")
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if holds != 2 {
		t.Errorf("hold called %d times, want 2 (the first ran out of time)", holds)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Errorf("the writer failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer still waits after the block ended")
	}

	// A writer's open transaction: the lock waits out its timeout each
	// attempt, then the block gives up.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE pgcut_test.blk SET v = v + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	called := false
	err = BlockPostgresWrites(ctx, pool, sh.Plan, 100*time.Millisecond, 2, log, func(context.Context) error {
		called = true
		return nil
	})
	if rbErr := tx.Rollback(ctx); rbErr != nil {
		t.Fatal(rbErr)
	}
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") || !pgRetryable(errors.Unwrap(err)) {
		t.Errorf("err %v, want giving up after 2 attempts on a lock timeout", err)
	}
	if called {
		t.Error("hold ran without the lock")
	}
}
