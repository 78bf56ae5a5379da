package localtests

import (
	"context"
	"strings"
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
