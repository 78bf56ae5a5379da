package localtests

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shadowCorruption changes the shadow behind osc's back while the cut-over is
// postponed, once the writers have stopped and their changes are applied
// (waitApplied); it returns the key it touched.
type shadowCorruption struct {
	name string
	// sql builds the statement from the quoted shadow, the quoted table and
	// a key of the table (pick's).
	sql func(shadow, table string, key int64) string
	// pick selects the key from the table.
	pick string
}

var shadowCorruptions = []shadowCorruption{
	{"value", func(s, _ string, k int64) string { return fmt.Sprintf("UPDATE %s SET qty = -777 WHERE id = %d", s, k) },
		"SELECT id FROM t WHERE qty IS NOT NULL ORDER BY id LIMIT 1 OFFSET 1000"},
	{"null", func(s, _ string, k int64) string { return fmt.Sprintf("UPDATE %s SET note = NULL WHERE id = %d", s, k) },
		"SELECT id FROM t WHERE note IS NOT NULL ORDER BY id LIMIT 1 OFFSET 700"},
	{"missing", func(s, _ string, k int64) string { return fmt.Sprintf("DELETE FROM %s WHERE id = %d", s, k) },
		"SELECT id FROM t ORDER BY id LIMIT 1 OFFSET 2000"},
	{"extra_inside", func(s, tb string, k int64) string {
		return fmt.Sprintf("INSERT INTO %s (id, name, created) SELECT %d, name, created FROM %s WHERE id = %d", s, k, tb, k-1)
	}, "SELECT MIN(a.id) + 1 FROM t a WHERE a.id > 100 AND a.id < (SELECT MAX(id) FROM t) AND NOT EXISTS (SELECT 1 FROM t b WHERE b.id = a.id + 1)"},
	{"extra_after_last", func(s, tb string, k int64) string {
		return fmt.Sprintf("INSERT INTO %s (id, name, created) SELECT %d, name, created FROM %s WHERE id = %d", s, k+100000, tb, k)
	}, "SELECT MAX(id) FROM t"},
	{"extra_before_first", func(s, tb string, k int64) string {
		return fmt.Sprintf("INSERT INTO %s (id, name, created) SELECT -5, name, created FROM %s WHERE id = %d", s, tb, k)
	}, "SELECT MIN(id) FROM t"},
}

// corruptShadow applies one corruption to the case's shadow and returns the
// key it touched. Without waitApplied first, a change the writers committed may
// still be applied meanwhile: a key picked in a hole of the original may be
// inserted, and applied to the shadow, before the corruption's own insert,
// which then fails on the duplicate key; a few more picks find another.
func corruptShadow(ctx context.Context, d dialect, db *sql.DB, table string, k shadowCorruption) (int64, error) {
	var (
		key int64
		res sql.Result
		q   string
	)
	for attempt := 1; ; attempt++ {
		if err := db.QueryRowContext(ctx, k.pick).Scan(&key); err != nil {
			return 0, fmt.Errorf("%s: pick a key: %w", k.name, err)
		}
		helpers, _ := d.helperTables(table)
		q = k.sql(d.quote(helpers[0]), d.quote(table), key)
		var err error
		if res, err = db.ExecContext(ctx, q); err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(strings.ToLower(err.Error()), "duplicate") {
			return 0, fmt.Errorf("%s: %s: %w", k.name, q, err)
		}
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return 0, fmt.Errorf("%s: %s changed %d rows (err %v), want 1", k.name, q, n, err)
	}
	return key, nil
}

// waitApplied returns once every change committed to table before it was
// called is applied to the shadow: it commits a marker to the table's first
// row and waits for it in the shadow, as the applier applies changes in
// commit order. The marker changes the table (name of its first row), and so
// the new table, alike.
func waitApplied(ctx context.Context, d dialect, db *sql.DB, table string) error {
	var key int64
	if err := db.QueryRowContext(ctx, "SELECT MIN(id) FROM "+d.quote(table)).Scan(&key); err != nil {
		return fmt.Errorf("wait for the applier: pick a row: %w", err)
	}
	marker := fmt.Sprintf("applied-%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET name = '%s' WHERE id = %d", d.quote(table), marker, key)); err != nil {
		return fmt.Errorf("wait for the applier: commit a marker: %w", err)
	}
	helpers, _ := d.helperTables(table)
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE id = %d AND name = '%s'", d.quote(helpers[0]), key, marker)
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("wait for the applier: %s: %w", q, err)
		}
		if n == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for the applier: the marker committed to %s row id=%d is not in the shadow after a minute", table, key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestChecksum corrupts the shadow while the cut-over is postponed, after a
// copy under writes: osc must find the difference before the cut-over, recopy
// the chunk and cut over a table equal to the original, row by row. With
// repairs disabled it must abort, name the key, and leave nothing behind.
func TestChecksum(t *testing.T) {
	for _, d := range dialects() {
		for _, k := range shadowCorruptions {
			t.Run(d.dir()+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				c, err := loadCase(filepath.Join(d.dir(), "add_column"))
				if err != nil {
					t.Fatal(err)
				}
				c.name = "checksum_" + k.name
				c.postponed = func(ctx context.Context, db *sql.DB, _ string) error {
					// A change the writers committed before they stopped may
					// not be applied yet: applied after the corruption, it
					// would overwrite it (the applier always wins).
					if err := waitApplied(ctx, d, db, c.table); err != nil {
						return err
					}
					_, err := corruptShadow(ctx, d, db, c.table, k)
					return err
				}
				c.wantLog = []string{"checksum: chunks differ", "checksum: recopied the chunks that differed", "checksum: the shadow equals the table"}
				runCase(t, d, d.connectAdmin(t), requireOsc(t), c)
			})
		}
		t.Run(d.dir()+"/no_repair", func(t *testing.T) {
			t.Parallel()
			checksumAborts(t, d)
		})
	}
}

// checksumAborts runs osc with --checksum-max-repairs 0 on a shadow corrupted
// while the cut-over was postponed: osc must fail naming the key, and leave
// the table as it was and nothing of its own.
func checksumAborts(t *testing.T, d dialect) {
	c, err := loadCase(filepath.Join(d.dir(), "add_column"))
	if err != nil {
		t.Fatal(err)
	}
	c.name = "checksum_no_repair"
	bin := requireOsc(t)
	admin := d.connectAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	ns, db := setupCase(ctx, t, d, admin, c)
	baseline, err := leftovers(ctx, d, db, ns, c.table, true)
	if err != nil {
		t.Fatal(err)
	}
	before, err := snapshot(ctx, d, db, ns, c.table)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "postpone-cut-over")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(d.oscArgs(ns, c.table), "--alter", c.alter, "--execute", "--chunk-size", chunkSize,
		"--postpone-cut-over-flag-file", flag, "--checksum-max-repairs", "0")
	osc, err := startOsc(ctx, bin, args)
	if err != nil {
		t.Fatal(err)
	}
	defer osc.logOutput(t)
	defer osc.stop()
	select {
	case <-osc.postponed:
	case <-osc.done:
		t.Fatalf("osc exited before postponing the cut-over: %s", osc.failure())
	case <-time.After(postponeTimeout):
		t.Fatalf("osc did not postpone the cut-over within %v", postponeTimeout)
	}
	key, err := corruptShadow(ctx, d, db, c.table, shadowCorruptions[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	select {
	case <-osc.done:
	case <-time.After(failureTimeout):
		t.Fatalf("osc did not exit within %v", failureTimeout)
	}
	if osc.err == nil {
		t.Fatal("osc cut over a shadow that differs from the table")
	}
	msg := osc.lastErrorLine()
	if !strings.Contains(msg, "differ") || !strings.Contains(msg, fmt.Sprintf("id=%d", key)) || !strings.Contains(msg, "qty") {
		t.Errorf("osc error %q does not name key id=%d and column qty", msg, key)
	}
	checkLeftovers(ctx, t, d, db, ns, c.table, true, baseline)
	if after, err := snapshot(ctx, d, db, ns, c.table); err != nil || after != before {
		t.Errorf("osc failed but changed table %s (err %v):\nbefore: %s\n after: %s", c.table, err, before, after)
	}
	dropCase(ctx, t, d, admin, ns)
}
