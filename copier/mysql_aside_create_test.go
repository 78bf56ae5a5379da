package copier_test

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"sync"
	"testing"

	"osc/table"
)

// recordingDB runs statements on a *sql.DB and records them.
type recordingDB struct {
	*sql.DB
	mu    sync.Mutex
	execs []string
}

func (r *recordingDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r.mu.Lock()
	r.execs = append(r.execs, q)
	r.mu.Unlock()
	return r.DB.ExecContext(ctx, q, args...)
}

// TestMySQLAsideCreate: the aside table is made by a CREATE TABLE that spells
// out its columns, not by CREATE TABLE … SELECT (which MySQL before 8.0.21
// refuses under enforce_gtid_consistency), and its columns are defined as
// the shadow's written columns: type, character set, collation,
// nullability; no ON UPDATE on a TIMESTAMP, no index but the key.
func TestMySQLAsideCreate(t *testing.T) {
	db := myOpenDB(t)
	ctx := context.Background()
	aside := table.MySQLAsideName("uniq_mk_src")
	cols := `id BIGINT UNSIGNED NOT NULL, k2 VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
		a VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL, b ENUM('x', 'y') CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
		ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), ts2 TIMESTAMP NULL, d DECIMAL(10,2) NULL,
		e TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, f FLOAT NOT NULL DEFAULT 1.5, PRIMARY KEY (id, k2)`
	for _, q := range []string{
		"DROP TABLE IF EXISTS uniq_mk_src, uniq_mk_dst, " + aside,
		"CREATE TABLE uniq_mk_src (" + cols + ") ENGINE=InnoDB",
		"CREATE TABLE uniq_mk_dst (" + cols + ", UNIQUE KEY uq (a), KEY kd (d)) ENGINE=InnoDB",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS uniq_mk_src, uniq_mk_dst, " + aside) }) //nolint:errcheck // best effort: the next run drops them first
	p := myPlan(t, db, "uniq_mk_src", "uniq_mk_dst", 2)
	p.NewUnique = []table.UniqueKey{{Name: "uq", Columns: []string{"a"}, Shadow: []string{"a"}}}
	x, err := table.NewMySQLAside(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingDB{DB: db}
	if err := x.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	ctas := regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\b.*\bSELECT\b`)
	for _, q := range rec.execs {
		if ctas.MatchString(q) {
			t.Errorf("the aside table is made by CREATE TABLE … SELECT: %s", q)
		}
	}
	describe := func(name string) string {
		rows, err := db.QueryContext(ctx, `SELECT CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, '-'),
				COALESCE(COLLATION_NAME, '-'), IS_NULLABLE, IF(EXTRA LIKE '%on update%', 'on-update', ''))
			FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSpace(s))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	want := strings.Replace(describe("uniq_mk_dst"), " on-update", "", 1)
	if got := describe(aside); got != want {
		t.Errorf("aside columns:\n%s\nwant the shadow's (without ON UPDATE):\n%s", got, want)
	}
	var idx string
	if err := db.QueryRowContext(ctx, `SELECT GROUP_CONCAT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, aside).Scan(&idx); err != nil || idx != "PRIMARY" {
		t.Errorf("aside indexes %q (%v), want PRIMARY only", idx, err)
	}
}
