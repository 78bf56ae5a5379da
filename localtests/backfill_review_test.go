package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cases from a review of osc backfill: how it walks and what it reports.

// TestBackfillRefusesKeyAssignment: a --set that assigns the key the
// backfill walks by would move rows ahead of the walk, where a later chunk
// updates them again; osc refuses it before changing anything.
func TestBackfillRefusesKeyAssignment(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, db, b := setupBackfill(ctx, t, d, "bfreview_key", 100)
			// A far row makes the walk's end lie beyond the moved rows.
			if _, err := db.ExecContext(ctx, "INSERT INTO users (id, full_name) VALUES (100000, 'F L')"); err != nil {
				t.Fatal(err)
			}
			for _, set := range []string{"id = id + 1000, n = n + 1", "n = n + 1, ID = id + 1000"} {
				p := startBackfill(ctx, t, d, ns, "--set", set, "--chunk-size", "10", "--execute")
				code := waitBackfill(t, p, time.Minute)
				var moved, most int64
				if err := db.QueryRowContext(ctx, "SELECT SUM(CASE WHEN id > 100 THEN 1 ELSE 0 END) - 1, MAX(n) FROM users").Scan(&moved, &most); err != nil {
					t.Fatal(err)
				}
				if code != 3 || moved != 0 || most != 0 {
					t.Fatalf("--set %q exited %d, %d rows moved, one updated %d times: want a refusal (exit 3)", set, code, moved, most)
				}
				if !strings.Contains(p.lastErrorLine(), "key") {
					t.Errorf("the refusal does not name the key: %s", p.lastErrorLine())
				}
			}
			if tableExists(ctx, d, db, ns, b.checkpoint) {
				t.Errorf("a refused backfill left %s", b.checkpoint)
			}
		})
	}
}

// TestBackfillVerifyFirstKeys: --verify lists the first failing keys in key
// order (PostgreSQL: by the key's type, not by its text).
func TestBackfillVerifyFirstKeys(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, _, _ := setupBackfill(ctx, t, d, "bfreview_verify", 20)
			p := startBackfill(ctx, t, d, ns, "--verify", "first_name IS NOT NULL", "--verify-max-keys", "3")
			if code := waitBackfill(t, p, time.Minute); code != 1 {
				t.Fatalf("--verify over rows that fail it exited %d, want 1", code)
			}
			out := p.stdout()
			if !strings.Contains(out, "verify: 20 rows do not satisfy") || !strings.Contains(out, "key (id=1)\n  key (id=2)\n  key (id=3)\n") {
				t.Fatalf("--verify does not list keys 1, 2, 3 first:\n%s", out)
			}
		})
	}
}

// TestBackfillNoEstimate: on a PostgreSQL table never analyzed (reltuples
// -1, no estimate) the plan and the status count the table's rows rather
// than report -1 of them; a table smaller than a chunk is sampled whole, and
// the plan says how many rows its sample read.
func TestBackfillNoEstimate(t *testing.T) {
	d := pgDialect{dsn: pgDSN()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, db, _ := setupBackfill(ctx, t, d, "bfreview_noest", 0)
	// Autovacuum must not analyze the table before osc reads it.
	for _, q := range []string{"DROP TABLE users",
		"CREATE TABLE users (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = false)",
		"INSERT INTO users (id) SELECT g FROM generate_series(1, 500) g"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var reltuples float64
	if err := db.QueryRowContext(ctx, "SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass").Scan(&reltuples); err != nil || reltuples >= 0 {
		t.Fatalf("reltuples %v (%v): the case needs a table without an estimate", reltuples, err)
	}
	p := startBackfill(ctx, t, d, ns, "--set", "n = n + 1")
	if code := waitBackfill(t, p, time.Minute); code != 0 {
		t.Fatalf("osc backfill --noop exited %d: %s", code, p.lastErrorLine())
	}
	if out := p.stdout(); !strings.Contains(out, "of about 500 in the table") || !strings.Contains(out, "(sample: 500 rows in") {
		t.Fatalf("the plan does not count the table's 500 rows, or its sample's:\n%s", out)
	}
	p = startBackfill(ctx, t, d, ns, "--set", "n = n + 1", "--chunk-size", "100", "--execute")
	if code := waitBackfill(t, p, time.Minute); code != 0 {
		t.Fatalf("osc backfill exited %d: %s", code, p.lastErrorLine())
	}
	if out := p.stdout(); !strings.Contains(out, "Backfill: 500/500 100.0%") {
		t.Fatalf("the status does not end at 500 rows of 500:\n%s", out)
	}
}

// TestBackfillPlanSample: the plan of a backfill of a table smaller than a
// chunk says how many rows its sample read: the table's, not a chunk's.
func TestBackfillPlanSample(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, _, _ := setupBackfill(ctx, t, d, "bfreview_plan", 20)
			p := startBackfill(ctx, t, d, ns, "--set", "n = n + 1", "--where", "id > 5", "--noop")
			if code := waitBackfill(t, p, time.Minute); code != 0 {
				t.Fatalf("osc backfill --noop exited %d: %s", code, p.lastErrorLine())
			}
			if out := p.stdout(); !strings.Contains(out, "rows:     15 match now") || !strings.Contains(out, "(sample: 20 rows in") {
				t.Fatalf("the plan does not say 15 rows match and its sample read 20:\n%s", out)
			}
		})
	}
}

// TestBackfillCollatedCompositeKey: a key of a string in a collation whose
// order is not the bytes' (MySQL case- and accent-insensitive, PostgreSQL
// ICU) and an integer, walked a row per chunk and three rows per chunk:
// every row is updated exactly once.
func TestBackfillCollatedCompositeKey(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, db, _ := setupBackfill(ctx, t, d, "bfreview_coll", 0)
			create := `CREATE TABLE users (name VARCHAR(10) COLLATE utf8mb4_general_ci NOT NULL, k INT NOT NULL, n INT NOT NULL DEFAULT 0, PRIMARY KEY (name, k))`
			if _, ok := d.(pgDialect); ok {
				create = `CREATE TABLE users (name text COLLATE "en-x-icu" NOT NULL, k int NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (name, k))`
			}
			rows := "('a', 1), ('A', 2), ('B', 1), ('b', 2), ('ä', 3), ('x', 1), ('x ', 2), ('Ab', 1), ('aB', 2), ('', 1), (' ', 2), ('z', 1)"
			for _, q := range []string{"DROP TABLE users", create, "INSERT INTO users (name, k) VALUES " + rows} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for round, size := range []string{"1", "3"} {
				p := startBackfill(ctx, t, d, ns, "--set", "n = n + 1", "--chunk-size", size, "--execute")
				if code := waitBackfill(t, p, time.Minute); code != 0 {
					t.Fatalf("osc backfill exited %d: %s", code, p.lastErrorLine())
				}
				var total, wrong int64
				q := fmt.Sprintf("SELECT COUNT(*), SUM(CASE WHEN n = %d THEN 0 ELSE 1 END) FROM users", round+1)
				if err := db.QueryRowContext(ctx, q).Scan(&total, &wrong); err != nil {
					t.Fatal(err)
				}
				if total != 12 || wrong != 0 {
					t.Fatalf("chunks of %s rows: %d of %d rows not updated exactly once", size, wrong, total)
				}
			}
		})
	}
}

// TestBackfillLongNamesShareNoCheckpoint: two PostgreSQL tables whose names
// share the 56 bytes the bookkeeping table's name keeps share its name; a
// --resume of one refuses the checkpoint a killed backfill of the other
// left, rather than skip the rows up to its key.
func TestBackfillLongNamesShareNoCheckpoint(t *testing.T) {
	d := pgDialect{dsn: pgDSN()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, db, _ := setupBackfill(ctx, t, d, "bfreview_long", 0)
	prefix := "t" + strings.Repeat("x", 55)
	a, b := prefix+"_a", prefix+"_b"
	for _, name := range []string{a, b} {
		for _, q := range []string{
			"CREATE TABLE " + name + " (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)",
			"INSERT INTO " + name + " (id) SELECT g FROM generate_series(1, 2000) g",
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	set := []string{"--set", "n = n + 1", "--chunk-size", "50", "--execute"}
	p := startBackfill(ctx, t, d, ns, append(append([]string{"--table", ns + "." + a}, set...), "--nice-ratio", "30")...)
	deadline := time.Now().Add(time.Minute)
	for {
		var done int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+a+" WHERE n > 0").Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done >= 100 {
			break
		}
		if exited(p) || time.Now().After(deadline) {
			t.Fatalf("the backfill of %s updated only %d rows in a minute", a, done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	r := startBackfill(ctx, t, d, ns, append(append([]string{"--table", ns + "." + b}, set...), "--resume")...)
	code := waitBackfill(t, r, time.Minute)
	var skipped int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+b+" WHERE n = 0").Scan(&skipped); err != nil {
		t.Fatal(err)
	}
	if code != 3 || skipped != 2000 {
		t.Fatalf("--resume of %s over the checkpoint of %s exited %d, left %d rows not updated: want a refusal (exit 3)", b, a, code, skipped)
	}
}

// lastBackfillScanned reads the rows scanned of the last status line osc
// backfill printed ("Backfill: <scanned>/<estimated> ...").
func lastBackfillScanned(t *testing.T, p *oscProcess) int64 {
	t.Helper()
	out := p.stdout()
	i := strings.LastIndex(out, "Backfill: ")
	var n, of int64
	if i < 0 {
		t.Fatalf("no status line:\n%s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "Backfill: %d/%d", &n, &of); err != nil {
		t.Fatalf("status line %q: %v", out[i:], err)
	}
	return n
}

// TestBackfillResumeBeforeFirstCheckpoint: MySQL creates the bookkeeping
// table, then saves its first checkpoint; a run killed in between leaves
// the table without one, which --resume takes for no chunk committed.
func TestBackfillResumeBeforeFirstCheckpoint(t *testing.T) {
	d := mysqlDialect{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, db, b := setupBackfill(ctx, t, d, "bfreview_first", 300)
	if _, err := db.ExecContext(ctx, `CREATE TABLE users_osc_bf (id BIGINT PRIMARY KEY,
		ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
		hint VARCHAR(64) NOT NULL, value TEXT NOT NULL) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	p := startBackfill(ctx, t, d, ns, "--set", "n = n + 1", "--chunk-size", "50", "--execute", "--resume")
	if code := waitBackfill(t, p, time.Minute); code != 0 {
		t.Fatalf("--resume over a bookkeeping table without a checkpoint exited %d: %s", code, p.lastErrorLine())
	}
	var wrong int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE n <> 1").Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d rows not updated exactly once (%v)", wrong, err)
	}
	if tableExists(ctx, d, db, ns, b.checkpoint) {
		t.Errorf("%s is left", b.checkpoint)
	}
}

// TestBackfillDeadlockSparesApplication: an application's transaction holds
// a row ahead in a chunk, which waits for it; then it updates a row the
// chunk already changed. The application must not be the deadlock's
// victim: the backfill gives way, the application's transaction commits.
func TestBackfillDeadlockSparesApplication(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const name = "bfreview_deadlock"
			ns, db, b := setupBackfill(ctx, t, d, name, 2000)
			spareApplication(ctx, t, d, db, b, ns, name, "n = n + 1", []any{b.update, "A B", "A", "B", 150})
		})
	}
}

// TestBackfillDeadlockSparesApplicationUniqueSet: as
// TestBackfillDeadlockSparesApplication, on PostgreSQL, with a --set that
// changes a column of a unique index in a table other tables reference, and
// the application's row held by a foreign key check (FOR KEY SHARE). Such an
// UPDATE takes FOR UPDATE, which the check blocks and FOR NO KEY UPDATE
// does not: a chunk that locked its rows only that strongly would then wait
// in its UPDATE for the application's row while holding the rows it
// changed.
func TestBackfillDeadlockSparesApplicationUniqueSet(t *testing.T) {
	d := pgDialect{dsn: pgDSN()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "bf_unique_set"
	ns, db, b := setupBackfill(ctx, t, d, name, 2000)
	for _, q := range []string{
		"ALTER TABLE users ADD COLUMN code bigint UNIQUE",
		"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id))",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	spareApplication(ctx, t, d, db, b, ns, name, "code = id", []any{"INSERT INTO orders (user_id) VALUES (150)"})
}

// spareApplication runs the deadlock of the tests above: a transaction
// holds row 150 (hold: a statement and its arguments), a backfill of --set
// set starts with 200-row chunks, and once its first chunk has met the row
// (it waits for it, having changed rows 1..149, or it gave way at once and
// retries) the transaction updates row 100 and commits, which must succeed,
// as the backfill must.
func spareApplication(ctx context.Context, t *testing.T, d dialect, db *sql.DB, b backfillSQL, ns, name, set string, hold []any) {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // committed below
	if _, err := tx.ExecContext(ctx, hold[0].(string), hold[1:]...); err != nil {
		t.Fatal(err)
	}
	p := startBackfill(ctx, t, d, ns, "--set", set, "--chunk-size", "200", "--lock-wait-timeout", "3s", "--execute")
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int64
		q := "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE '%" + name + "%SET " + set + "%'"
		if _, ok := d.(pgDialect); ok {
			q = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%" + name + "%SET " + set + "%'"
		}
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
	// Past the server's deadlock check of a chunk still waiting
	// (PostgreSQL: deadlock_timeout, 1 s, after its wait began, once): the
	// application's wait below then closes the cycle and its own check,
	// later, would pick it. A busy machine makes that gap anyway.
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
