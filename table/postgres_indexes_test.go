package table

import (
	"context"
	"strings"
	"testing"
	"time"
)

// pgIndexProperties describes table's indexes without their names (the
// shadow's differ until the cut-over renames them): definition, comment,
// CLUSTER mark, column statistics targets, tablespace, column names.
func pgIndexProperties(t *testing.T, q PostgresQuerier, table string) string {
	t.Helper()
	var s string
	err := q.QueryRow(context.Background(), `SELECT coalesce(string_agg(d, E'\n' ORDER BY d), '') FROM (
		SELECT format('%s comment=%s clustered=%s stats=%s tablespace=%s columns=%s',
			regexp_replace(pg_get_indexdef(i.indexrelid), '^(CREATE (UNIQUE )?INDEX) \S+ ON \S+', '\1 ON'),
			coalesce(obj_description(i.indexrelid, 'pg_class'), ''), i.indisclustered,
			ARRAY(SELECT a.attstattarget FROM pg_attribute a WHERE a.attrelid = i.indexrelid ORDER BY a.attnum), x.reltablespace,
			ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indexrelid ORDER BY a.attnum)) AS d
		FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = to_regclass($1)) s`, pgTestSchema+"."+table).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPostgresIndexesAfterCopy: the shadow is made without its non-unique
// indexes (its unique ones and its key stay), which BuildPostgresIndexes
// then builds with their comments, CLUSTER mark and statistics targets; a
// resumed run's plan (RebuildPostgresShadow) accepts a shadow with any of
// them built, and refuses one with an index of its own.
func TestPostgresIndexesAfterCopy(t *testing.T) {
	var stmts []string
	// p is altered by the plain ALTER: the server says what the shadow's
	// indexes must be.
	for _, name := range []string{"t", "p"} {
		for _, q := range []string{
			"CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int)",
			"CREATE UNIQUE INDEX t_b_key ON t (b)",
			"CREATE INDEX t_a_idx ON t (a) WHERE a > 0",
			"COMMENT ON INDEX t_a_idx IS 'positive a'",
			"CREATE INDEX t_c_idx ON t (c) INCLUDE (b) WITH (fillfactor = 70)",
			"ALTER TABLE t CLUSTER ON t_c_idx",
			"CREATE INDEX t_e_idx ON t ((a + c))",
			"ALTER INDEX t_e_idx ALTER COLUMN 1 SET STATISTICS 300",
			"INSERT INTO t SELECT g, g % 7, 'b' || g, g FROM generate_series(1, 100) g",
		} {
			stmts = append(stmts, strings.NewReplacer(" t ", " "+name+" ", " t_", " "+name+"_").Replace(q))
		}
	}
	// The plain RENAME COLUMN leaves the index columns' names; a CREATE
	// INDEX after it would name them after the column.
	const alter = "ADD COLUMN z int; RENAME COLUMN c TO d"
	pool := pgTestPool(t, append(stmts, "ALTER TABLE p ADD COLUMN z int", "ALTER TABLE p RENAME COLUMN c TO d")...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := pgIndexProperties(t, pool, "p")
	in, err := pgInspect(t, pool, "t")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := pgShadow(t, pool, "t", alter)
	if err != nil {
		t.Fatal(err)
	}
	shadow := sh.Plan.Shadow.Name
	if len(sh.Indexes) != 3 {
		t.Fatalf("set aside %d indexes, want the 3 non-unique ones: %+v", len(sh.Indexes), sh.Indexes)
	}
	if n := pgQueryOne[int](t, pool, "SELECT count(*) FROM pg_index WHERE indrelid = '"+pgTestSchema+"."+shadow+"'::regclass AND indisunique"); n != 2 {
		t.Errorf("the shadow has %d unique indexes during the copy, want 2 (the key and t_b_key's)", n)
	}
	if n := pgQueryOne[int](t, pool, "SELECT count(*) FROM pg_index WHERE indrelid = '"+pgTestSchema+"."+shadow+"'::regclass AND NOT indisunique"); n != 0 {
		t.Errorf("the shadow has %d non-unique indexes during the copy, want none", n)
	}
	rebuild := func() error {
		_, err := RebuildPostgresShadow(ctx, pool, in, alter, time.Second)
		return err
	}
	if err := rebuild(); err != nil {
		t.Fatalf("resume before the build: %v", err)
	}
	if err := BuildPostgresIndexes(ctx, pool, pgTestSchema, shadow, sh.Indexes[:1], 2); err != nil {
		t.Fatal(err)
	}
	if err := rebuild(); err != nil {
		t.Fatalf("resume with one index built: %v", err)
	}
	// The one built is skipped.
	if err := BuildPostgresIndexes(ctx, pool, pgTestSchema, shadow, sh.Indexes, 2); err != nil {
		t.Fatal(err)
	}
	if got := pgIndexProperties(t, pool, shadow); got != want {
		t.Errorf("the shadow's indexes after the build:\n%s\nwant the original's:\n%s", got, want)
	}
	if err := rebuild(); err != nil {
		t.Fatalf("resume with every index built: %v", err)
	}
	if _, err := pool.Exec(ctx, "CREATE INDEX stray ON "+pgTestSchema+"."+shadow+" (d, a)"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, rebuild(), "is not what the --alter makes")
}

// TestPostgresIndexBuildFails: a build that fails (here on a row its
// expression cannot index) returns the error naming the index and leaves no
// index of that name behind.
func TestPostgresIndexBuildFails(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE f (id int PRIMARY KEY, a int)",
		"CREATE INDEX f_a_idx ON f (a)",
		"CREATE INDEX f_q_idx ON f ((100 / a))",
		"INSERT INTO f SELECT g, g FROM generate_series(1, 100) g",
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh, err := pgShadow(t, pool, "f", "ALTER COLUMN a TYPE bigint USING a - 1")
	if err != nil {
		t.Fatal(err)
	}
	shadow := sh.Plan.Shadow.Name
	if _, err := pool.Exec(ctx, "INSERT INTO "+pgTestSchema+"."+shadow+" SELECT id, a - 1 FROM "+pgTestSchema+".f"); err != nil {
		t.Fatal(err)
	}
	// Two at once: the error is the failed build's, not the cancellation of
	// the other.
	err = BuildPostgresIndexes(ctx, pool, pgTestSchema, shadow, sh.Indexes, 2)
	wantErr(t, err, "division by zero", "build index")
	if n := pgQueryOne[int](t, pool, "SELECT count(*) FROM pg_index WHERE indrelid = '"+pgTestSchema+"."+shadow+"'::regclass AND NOT indisunique AND pg_get_indexdef(indexrelid) LIKE '%100 / a%'"); n != 0 {
		t.Errorf("the failed build left its index behind")
	}
}

func TestWithoutPlainIndexes(t *testing.T) {
	desc := "column id integer\nindex CREATE UNIQUE INDEX k ON s.t USING btree (id) replident=f\nindex CREATE INDEX a ON s.t USING btree (a) replident=f\ntable kind=r"
	want := "column id integer\nindex CREATE UNIQUE INDEX k ON s.t USING btree (id) replident=f\ntable kind=r"
	if got := WithoutPlainIndexes(desc); got != want {
		t.Errorf("WithoutPlainIndexes:\n%s\nwant\n%s", got, want)
	}
}
