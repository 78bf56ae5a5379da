package dialect

// End-to-end test of the clash review (clashrv, see
// apply/postgres_clash_review_test.go), which failed until a chunk's rows that
// clash with an older applied row were dealt with (today: skipped by the
// copier and refreshed from the source, change.Chunk.Stale).

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

const clashrvSchema = "clashrv_dialect"

// clashrvRows lists the rows of clashrvSchema.name as text, by id.
func clashrvRows(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	var out []string
	if err := pool.QueryRow(context.Background(), "SELECT coalesce(array_agg(x::text ORDER BY id), '{}') FROM "+clashrvSchema+"."+name+" x").Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClashReviewChunkMeetsOlderRun is TestClashReviewChunkMeetsOlderAppliedRow
// (apply/) end to end: the applier has written row 1 with 'x' and is held up
// (a session locks the shadow's row 1, as any slow apply would leave it
// behind) before applying that row 1 gave 'x' up and row 1000 took it; the
// copy, throttled until then, reads row 1000 with 'x', meets the shadow's
// older row 1 on the unique index and fails the run with 23505, although
// nothing is wrong: the applier's next changes make room for it.
func TestClashReviewChunkMeetsOlderRun(t *testing.T) {
	const name = "cm"
	pool := pgSchemaDB(t, clashrvSchema,
		"CREATE TABLE cm (id int PRIMARY KEY, email text UNIQUE, v text)",
		"INSERT INTO cm VALUES (1000, 'y', 'old')")
	dir := t.TempDir()
	throttle, postpone := filepath.Join(dir, "throttle"), filepath.Join(dir, "postpone")
	for _, f := range []string{throttle, postpone} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := engine.Config{Schema: clashrvSchema, Table: name, Alter: "ADD COLUMN w int", Execute: true, Version: "test",
		NoChecksum: true, PostponeCutOverFlagFile: postpone, StatusInterval: time.Hour, CheckpointInterval: time.Hour,
		CutOverLockTimeout: time.Second, CutOverRetries: 5, Control: engine.Control{ThrottleFlagFile: throttle}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := rspgDialect(t, cfg, testdb.PostgresDSN())
	done := make(chan error, 1)
	go func() { done <- engine.New(cfg, d, slog.New(slog.DiscardHandler), io.Discard).Run(ctx) }()
	shadow := table.QuotePostgres(clashrvSchema, pgTestNames(t, clashrvSchema, name).Shadow)
	waitFor := func(q string) {
		t.Helper()
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			var ok bool
			_ = pool.QueryRow(ctx, q).Scan(&ok) // the shadow may not exist yet
			if ok {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("the run ended early: %v", err)
			default:
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("timed out waiting for %s", q)
			}
		}
	}
	// Row 1 reaches the shadow through the applier (the copy is throttled);
	// it is written again until capture has started and it arrives.
	testdb.ExecPostgresIn(t, pool, clashrvSchema, "INSERT INTO cm VALUES (1, 'x', 'new')")
	for start := time.Now(); ; {
		var ok bool
		_ = pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+shadow+" WHERE id = 1)").Scan(&ok)
		if ok {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("row 1 was not applied")
		}
		time.Sleep(200 * time.Millisecond)
		testdb.ExecPostgresIn(t, pool, clashrvSchema, "UPDATE cm SET v = 'new' WHERE id = 1")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+shadow+" WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	testdb.ExecPostgresIn(t, pool, clashrvSchema, "UPDATE cm SET email = 'z' WHERE id = 1", "UPDATE cm SET email = 'x' WHERE id = 1000")
	waitFor("SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname = '" +
		pgTestNames(t, clashrvSchema, name).Shadow + "') OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%" +
		pgTestNames(t, clashrvSchema, name).Shadow + "%')")
	if err := os.Remove(throttle); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the copy reads the table
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(postpone); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the run failed (the applier was only behind the copy): %v", err)
	}
	if got, want := clashrvRows(t, pool, name), []string{"(1,z,new,)", "(1000,x,old,)"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("table %v, want %v", got, want)
	}
}
