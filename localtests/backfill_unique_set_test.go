package localtests

import (
	"context"
	"testing"
	"time"
)

// TestBackfillDeadlockSparesApplicationUniqueSet: as
// TestBackfillDeadlockSparesApplication, on PostgreSQL, with a --set that
// changes a column of a unique index in a table other tables reference. Such
// an UPDATE takes FOR UPDATE, stronger than the chunk's FOR NO KEY UPDATE
// NOWAIT, which a foreign key check's FOR KEY SHARE does not stop: the chunk
// locks its rows, then its UPDATE waits for the application's row while
// holding the rows it changed, and the application that then asks for one of
// them is the deadlock's victim.
func TestBackfillDeadlockSparesApplicationUniqueSet(t *testing.T) {
	d := pgDialect{dsn: pgDSN()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, db, b := setupBackfill(ctx, t, d, "bf_unique_set", 2000)
	for _, q := range []string{
		"ALTER TABLE users ADD COLUMN code bigint UNIQUE",
		"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id))",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // committed below
	// The foreign key check holds row 150 FOR KEY SHARE.
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders (user_id) VALUES (150)"); err != nil {
		t.Fatal(err)
	}
	p := startBackfill(ctx, t, d, ns, "--set", "code = id", "--chunk-size", "200", "--lock-wait-timeout", "3s", "--execute")
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int64
		q := "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%bf_unique_set%SET code = id%'"
		if err := db.QueryRowContext(ctx, q).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 || p.logged("retrying") {
			break
		}
		if exited(p) || time.Now().After(deadline) {
			t.Fatal("the backfill's first chunk never met the application's row")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := tx.ExecContext(ctx, b.update, "C D", "C", "D", 100); err != nil {
		t.Fatalf("the application's transaction fails: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the application's transaction fails: %v", err)
	}
	if code := waitBackfill(t, p, time.Minute); code != 0 {
		t.Fatalf("osc backfill exited %d: %s", code, p.lastErrorLine())
	}
}
