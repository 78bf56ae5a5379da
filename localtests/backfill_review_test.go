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
