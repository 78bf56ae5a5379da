package cutover

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestPostgresBlockWritesCancel: a cancel (Ctrl-C) while the block waits
// for its lock or while hold runs ends the block with the cancel's cause,
// and the lock is gone (at once, or once the session of a lock wait given
// up on has noticed): a writer goes on. On a partitioned table
// the block holds writes to a partition by its own name too.
func TestPostgresBlockWritesCancel(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE blp (id int PRIMARY KEY, v int NOT NULL) PARTITION BY RANGE (id)",
		"CREATE TABLE blp_1 PARTITION OF blp FOR VALUES FROM (0) TO (100)",
		"CREATE TABLE blp_2 PARTITION OF blp FOR VALUES FROM (100) TO (200)",
		"INSERT INTO blp VALUES (1, 0), (150, 0)")
	sh := pgTestShadow(t, pool, "blp", "ADD COLUMN c int")
	log := slog.New(slog.DiscardHandler)
	held := func() int {
		return pgQuery[int](t, pool, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relnamespace = 'pgcut_test'::regnamespace AND c.relname LIKE 'blp%' AND l.mode = 'ShareLock'`)
	}
	write := func(what string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := pool.Exec(wctx, "UPDATE pgcut_test.blp_2 SET v = v + 1 WHERE id = 150"); err != nil {
			t.Errorf("%s: a writer to a partition could not write: %v", what, err)
		}
	}

	// Cancelled while hold runs: a writer to a partition by name waits
	// during the hold, and goes on after the cancel.
	errStop := errors.New("stop")
	ctx, cancel := context.WithCancelCause(context.Background())
	err := BlockPostgresWrites(ctx, pool, sh.Plan, 5*time.Second, 3, log, func(hctx context.Context) error {
		if n := held(); n < 3 {
			t.Errorf("SHARE locks on the table and its partitions: %d, want 3", n)
		}
		wctx, wcancel := context.WithTimeout(hctx, 300*time.Millisecond)
		defer wcancel()
		if _, err := pool.Exec(wctx, "UPDATE pgcut_test.blp_2 SET v = v + 1 WHERE id = 150"); err == nil {
			t.Error("a writer to a partition by name did not wait on the block")
		}
		cancel(errStop)
		<-hctx.Done()
		return hctx.Err()
	})
	if !errors.Is(err, errStop) {
		t.Errorf("cancelled in hold: err %v, want the cancel's cause", err)
	}
	if n := held(); n != 0 {
		t.Errorf("cancelled in hold: %d SHARE locks left", n)
	}
	write("cancelled in hold")

	// Cancelled while the lock waits behind a writer's open transaction.
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), "UPDATE pgcut_test.blp SET v = v + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancelCause(context.Background())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errStop) })
	called := false
	err = BlockPostgresWrites(ctx, pool, sh.Plan, 5*time.Second, 3, log, func(context.Context) error {
		called = true
		return nil
	})
	if !errors.Is(err, errStop) || called {
		t.Errorf("cancelled in the lock wait: err %v (hold called %v), want the cancel's cause", err, called)
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	// pgx gives up a statement at a cancel by closing its connection: the
	// server's session may still wait for the lock, up to its lock_timeout,
	// get it as the writer's transaction ends, and end itself at once.
	for deadline := time.Now().Add(2 * time.Second); held() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := held(); n != 0 {
		t.Errorf("cancelled in the lock wait: %d SHARE locks left", n)
	}
	write("cancelled in the lock wait")
}
