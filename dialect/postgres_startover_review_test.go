package dialect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/engine"
	"osc/internal/testdb"
)

const pgStartOverReviewSchema = "pgso_review"

// TestPostgresStartsOverDuringCutOver: the decoding bug strikes during the
// cut-over of a migration with a revert window, while the window's reverse
// capture makes its slot (which waits for the transaction the bug strikes
// to end), and a session holds the table against the swap. The cut-over gives up without swapping, the migration starts
// over, ends with the writers' rows, and leaves nothing behind: no slot,
// no publication (the reverse capture's neither), no shadow.
func TestPostgresStartsOverDuringCutOver(t *testing.T) {
	const name = "sc"
	pool := pgQuietSchemaDB(t, pgStartOverReviewSchema,
		"CREATE TABLE sc (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text)",
		"INSERT INTO sc (owner, v, s) SELECT i % 3, i, 's' || i FROM generate_series(1, 3000) i")
	names := pgTestNames(t, pgStartOverReviewSchema, name)
	var prov pgProvocation
	for attempt := 1; prov.more(attempt); attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		flag := filepath.Join(t.TempDir(), "postpone")
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := engine.Config{Schema: pgStartOverReviewSchema, Table: name, Alter: fmt.Sprintf("ADD COLUMN c%d int NOT NULL DEFAULT 7", attempt),
			Execute: true, Version: "test", StatusInterval: time.Hour, PostponeCutOverFlagFile: flag, RevertWindow: 2 * time.Second,
			CutOverLockTimeout: 200 * time.Millisecond, CutOverRetries: 1000}
		var logs testdb.Logs
		log := slog.New(slog.NewTextHandler(&logs, nil))
		d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresQuietDSN()}, log)
		if err != nil {
			t.Fatal(err)
		}
		writers := startPGWriters(t, ctx, pool, pgStartOverReviewSchema+"."+name, uint64(attempt))
		a := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
		m := engine.New(cfg, d, log, io.Discard)
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		dtx := pgProvokeDecodeBug(t, ctx, pool, &prov, pgStartOverReviewSchema, fmt.Sprintf("sc_x%d", attempt), names.Slot, a, done)
		waitPostponed(t, ctx, m, done)
		// The cut-over waits for this lock; D's commit then fails the
		// capture.
		blocker := pgBegin(t, ctx, pool, "LOCK TABLE "+pgStartOverReviewSchema+"."+name+" IN ACCESS SHARE MODE")
		if err := os.Remove(flag); err != nil {
			t.Fatal(err)
		}
		// The reverse capture's slot waits for D (it holds a transaction
		// id) to end before it is ready.
		for {
			var exists bool
			if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", names.ReverseCapture()).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("the run ended before its cut-over made the reverse slot: %v\n%s", err, logs.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := dtx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		// The bug strikes at once when it does (else another slot's
		// snapshot kept it away: pgProvocation).
		for end := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "starting the migration over") &&
			!strings.Contains(logs.String(), "could not map filenode") && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
		// Let the start over's cleanup drop what the first start made.
		time.Sleep(500 * time.Millisecond)
		if err := blocker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		runErr := <-done
		time.Sleep(100 * time.Millisecond) // writes to the new table
		want := writers.wait(t)
		startedOver := strings.Contains(logs.String(), "starting the migration over")
		if runErr != nil {
			t.Fatalf("migration: %v\n%s", runErr, logs.String())
		}
		checkPGRows(t, ctx, pool, "SELECT id, v, s FROM "+pgStartOverReviewSchema+"."+name, want)
		if left := rspgLeftIn(t, pool, pgStartOverReviewSchema, name); len(left) != 1 || left[0] != "table "+names.Old {
			t.Errorf("left behind: %v, want only the old table", left)
		}
		var rev int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1) +
			(SELECT count(*) FROM pg_publication WHERE pubname = $1)`, names.ReverseCapture()).Scan(&rev); err != nil || rev != 0 {
			t.Errorf("the reverse capture is left behind (%d, %v)", rev, err)
		}
		if _, err := pool.Exec(ctx, "DROP TABLE "+pgStartOverReviewSchema+"."+names.Old); err != nil {
			t.Fatal(err)
		}
		cancel()
		if startedOver {
			return
		}
		t.Logf("attempt %d: osc did not meet the decoding bug; again", attempt)
	}
	prov.giveUp(t, "osc never met PostgreSQL's decoding bug")
}

// TestPostgresResumedRunMeetsDecodingBug: a run killed right after its slot
// became ready, while a transaction the decoding bug strikes was open, is
// resumed; the resumed run meets the bug, which it does not start over
// from. It fails, having removed what the killed run left (nothing is left
// to resume), and its error says to run osc again without --resume, as
// README ("Why nothing is lost", step 1) promises.
func TestPostgresResumedRunMeetsDecodingBug(t *testing.T) {
	const name = "sr"
	pool := pgQuietSchemaDB(t, pgStartOverReviewSchema,
		"CREATE TABLE sr (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text)",
		"INSERT INTO sr (owner, v, s) SELECT i % 3, i, 's' || i FROM generate_series(1, 2000) i")
	names := pgTestNames(t, pgStartOverReviewSchema, name)
	var prov pgProvocation
	for attempt := 1; prov.more(attempt); attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// A resume that completes (the bug not met) drops the old table:
		// the next attempt migrates the table again.
		cfg := engine.Config{Schema: pgStartOverReviewSchema, Table: name, Alter: "ADD COLUMN c int", Execute: true, Version: "test",
			StatusInterval: time.Hour, OkToDropTable: true}
		// The killed run: shadow, checkpoint table, slot, one checkpoint.
		p := newPGProxyTo(t, testdb.PostgresQuietDSN())
		d := rspgDialect(t, cfg, p.dsn(t))
		if err := d.Inspect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateShadow(ctx); err != nil {
			t.Fatal(err)
		}
		src, err := d.NewSource()
		if err != nil {
			t.Fatal(err)
		}
		a := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
		started := make(chan error, 1)
		go func() { started <- src.Start(ctx) }()
		dtx := pgProvokeDecodeBug(t, ctx, pool, &prov, pgStartOverReviewSchema, fmt.Sprintf("sr_x%d", attempt), names.Slot, a, started)
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		ck := engine.Checkpoint{Version: cfg.Version, Alter: cfg.Alter, Position: src.Checkpoint(nil), Saved: time.Now().UTC().Truncate(time.Microsecond)}
		if err := d.SaveCheckpoint(ctx, &ck); err != nil {
			t.Fatal(err)
		}
		p.kill()
		waitSlotIdle(t, pool, names.Slot)
		waitLockFree(t, pool, "osc:"+cfg.Schema+"."+cfg.Table)
		if err := dtx.Commit(ctx); err != nil {
			t.Fatal(err)
		}

		cfg.Resume = true
		var logs testdb.Logs
		log := slog.New(slog.NewTextHandler(&logs, nil))
		rd, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresQuietDSN()}, log)
		if err != nil {
			t.Fatal(err)
		}
		runErr := engine.New(cfg, rd, log, io.Discard).Run(ctx)
		cancel()
		if left := rspgLeftIn(t, pool, pgStartOverReviewSchema, name); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if runErr == nil || !strings.Contains(runErr.Error(), "could not map filenode") {
			// The killed run's slot did not meet the bug: what is left
			// was dropped (the resume completed, or failed otherwise).
			t.Logf("attempt %d: the resumed run did not meet the decoding bug (%v); again", attempt, runErr)
			if _, err := pool.Exec(context.Background(), "ALTER TABLE "+pgStartOverReviewSchema+"."+name+" DROP COLUMN IF EXISTS c"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.Contains(logs.String(), "starting the migration over") {
			t.Errorf("a resumed run started over:\n%s", logs.String())
		}
		if !strings.Contains(runErr.Error(), "run osc again without --resume") {
			t.Errorf("the resumed run's error does not say what to do (run osc again without --resume): %v", runErr)
		}
		return
	}
	// The killed run's own walsender saved snapshots at the records the
	// resumed run's decoding reads again, which it may take up: not meeting
	// the bug here proves nothing about the provocation.
	t.Skipf("the resumed run never met PostgreSQL's decoding bug (other active slots: %v)", prov.others)
}

// TestPostgresDecodingBugAfterSwapSaysSwapped: the decoding bug strikes
// after the cut-over swapped the tables, while it validates a foreign key
// (a session holds the referencing table). The migration does not start
// over (the tables are swapped), and its error must say that the tables
// were swapped and which keys to validate: the capture's error alone says
// osc dropped what it made and starts over, which is not what happened.
func TestPostgresDecodingBugAfterSwapSaysSwapped(t *testing.T) {
	pool := pgQuietSchemaDB(t, pgStartOverReviewSchema)
	var prov pgProvocation
	prov.provoke(t, "the capture never met PostgreSQL's decoding bug after the swap", func(attempt int) bool { return pgDecodingBugAfterSwap(t, pool, &prov, attempt) })
}

// pgDecodingBugAfterSwap runs one attempt of
// TestPostgresDecodingBugAfterSwapSaysSwapped on a table of its own; it
// reports whether the capture met the bug after the swap.
func pgDecodingBugAfterSwap(t *testing.T, pool *pgxpool.Pool, prov *pgProvocation, attempt int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name, child := fmt.Sprintf("sw%d", attempt), fmt.Sprintf("sw%d_child", attempt)
	q := func(n string) string { return pgStartOverReviewSchema + "." + n }
	testdbExec := func(stmt string) {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	testdbExec("CREATE TABLE " + q(name) + " (id bigserial PRIMARY KEY, owner int NOT NULL, v int NOT NULL DEFAULT 1, s text)")
	testdbExec("INSERT INTO " + q(name) + " (owner, v, s) SELECT i % 3, i, 's' || i FROM generate_series(1, 2000) i")
	testdbExec("CREATE TABLE " + q(child) + " (id int PRIMARY KEY, p bigint REFERENCES " + q(name) + " (id))")
	names := pgTestNames(t, pgStartOverReviewSchema, name)
	flag := filepath.Join(t.TempDir(), "postpone")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Schema: pgStartOverReviewSchema, Table: name, Alter: "ADD COLUMN c int NOT NULL DEFAULT 7",
		Execute: true, Version: "test", StatusInterval: time.Hour, PostponeCutOverFlagFile: flag, NoChecksum: true,
		CutOverLockTimeout: 10 * time.Second, CutOverRetries: 1000}
	var logs testdb.Logs
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := NewPostgres(cfg, PostgresOptions{DSN: testdb.PostgresQuietDSN()}, log)
	if err != nil {
		t.Fatal(err)
	}
	writers := startPGWriters(t, ctx, pool, q(name), uint64(attempt))
	a := pgBegin(t, ctx, pool, "SELECT pg_current_xact_id()")
	m := engine.New(cfg, d, log, io.Discard)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	dtx := pgProvokeDecodeBug(t, ctx, pool, prov, pgStartOverReviewSchema, fmt.Sprintf("sw%d_x", attempt), names.Slot, a, done)
	waitPostponed(t, ctx, m, done)
	// The cut-over's attempts wait for the shadow's lock, holding the
	// child's; a request for the child's queued behind an attempt is
	// granted as it commits, before the validation asks.
	shadowHold := pgBegin(t, ctx, pool, "SELECT FROM "+q(names.Shadow)+" LIMIT 1")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	waitLock := func(what, rel, mode string) {
		for {
			var waiting bool
			if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND relation = $1::regclass AND mode LIKE $2)`,
				q(rel), mode).Scan(&waiting); err != nil {
				// The test's time ran out (seen on a loaded machine):
				// what osc was doing, and who waited for whom, say why.
				t.Fatalf("waiting until %s: %v\n%s\nsessions:\n%s", what, err, logs.String(), pgSessions(pool))
			}
			if waiting {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("the run ended before %s: %v\n%s", what, err, logs.String())
			case <-time.After(time.Millisecond):
			}
		}
	}
	waitLock("its cut-over waited for the shadow", names.Shadow, "%")
	childConn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer childConn.Close(context.Background())
	childHold := make(chan error, 1)
	go func() {
		_, err := childConn.Exec(ctx, "BEGIN; LOCK TABLE "+q(child)+" IN SHARE MODE")
		childHold <- err
	}()
	waitLock("the child's lock was queued", child, "ShareLock")
	if err := shadowHold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-childHold; err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(logs.String(), "cut-over: tables swapped") {
		select {
		case <-ctx.Done():
			t.Fatalf("no swap:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // the validation waits for the child
	if err := dtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(10 * time.Second):
		// The capture did not fail: let the validation go on.
		if _, err := childConn.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		runErr = <-done
	}
	writers.wait(t)
	var added bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'c' AND NOT attisdropped)`,
		q(name)).Scan(&added); err != nil {
		t.Fatal(err)
	}
	if !added {
		t.Fatalf("the tables were not swapped (%v)\n%s", runErr, logs.String())
	}
	if runErr == nil || !strings.Contains(runErr.Error(), "could not map filenode") {
		t.Logf("attempt %d: the capture did not meet the decoding bug after the swap (%v)", attempt, runErr)
		return false
	}
	if strings.Contains(logs.String(), "starting the migration over") {
		t.Errorf("started over after the swap:\n%s", logs.String())
	}
	if !strings.Contains(runErr.Error(), "the tables were swapped") || !strings.Contains(runErr.Error(), "VALIDATE CONSTRAINT") {
		t.Errorf("the error does not say the tables were swapped, nor what to validate: %v", runErr)
	}
	return true
}

// pgSessions lists the server's sessions with their locks and the sessions
// blocking them: what a test that waited too long for a lock shows.
func pgSessions(pool *pgxpool.Pool) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT format('pid %s %s (%s) blocked by %s, locks: %s: %s', a.pid, a.state, a.wait_event_type || ':' || a.wait_event,
			pg_blocking_pids(a.pid), (SELECT string_agg(l.relation::regclass || ' ' || l.mode || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END, ', ')
				FROM pg_locks l WHERE l.pid = a.pid AND l.relation IS NOT NULL), left(a.query, 200))
		FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()`)
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, "\n")
}
