package localtests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBackfillVerifyChunkedThrottledMetrics: --verify counts in chunks that
// a throttle holds (a single COUNT(*) ran past the throttle), lists the
// first failing keys across chunks, and the backfill serves its metrics
// while it runs.
func TestBackfillVerifyChunkedThrottledMetrics(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ns, db, _ := setupBackfill(ctx, t, d, "leftovers_count", 1000)
			if _, err := db.ExecContext(ctx, "UPDATE users SET first_name = 'x' WHERE id NOT IN (5, 250, 999)"); err != nil {
				t.Fatal(err)
			}
			flag := filepath.Join(t.TempDir(), "throttle")
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			addr, err := freeAddress()
			if err != nil {
				t.Fatal(err)
			}
			p := startBackfill(ctx, t, d, ns, "--verify", "first_name IS NOT NULL", "--verify-max-keys", "2",
				"--chunk-size", "100", "--throttle-flag-file", flag, "--metrics-address", addr)
			var body string
			verifying := regexp.MustCompile(`(?m)^osc_backfill_state\{[^}]*state="verifying"[^}]*\} 1$`)
			for deadline := time.Now().Add(time.Minute); !verifying.MatchString(body) || !strings.Contains(body, `osc_backfill_throttled{reason="flag-file`); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no metrics of a throttled --verify:\n%s", body)
				}
				body, _ = scrape(ctx, "http://"+addr+"/metrics") // not served yet: try again
			}
			if !regexp.MustCompile(`(?m)^osc_backfill_rows_counted\{[^}]*\} 0$`).MatchString(body) {
				t.Fatalf("rows counted while throttled:\n%s", body)
			}
			time.Sleep(time.Second)
			select {
			case <-p.done:
				t.Fatalf("--verify ended while throttled: %s", p.stdout())
			default:
			}
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			if code := waitBackfill(t, p, time.Minute); code != 1 {
				t.Fatalf("--verify over rows that fail it exited %d, want 1", code)
			}
			out := p.stdout()
			if !strings.Contains(out, "verify: 3 rows do not satisfy") || !strings.Contains(out, "key (id=5)\n  key (id=250)\n") || strings.Contains(out, "id=999") {
				t.Fatalf("--verify does not count 3 rows and list keys 5 and 250:\n%s", out)
			}
		})
	}
}
