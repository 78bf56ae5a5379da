package table

import (
	"context"
	"testing"
	"time"
)

// TestPostgresAsideTable: a plan with a new unique key gets, with its
// shadow, the table of rows set aside: the columns the copy and the
// applier write (an identity column as a plain one, no generated column),
// keyed by the rows' key, no other unique index; a resumed run's plan
// (RebuildPostgresShadow) leaves it and its rows as they are; a plan
// without a new unique key has none. A new unique key on a table with a
// deferrable unique constraint is refused.
func TestPostgresAsideTable(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE t (id int PRIMARY KEY, email text, n int GENERATED ALWAYS AS IDENTITY, g int GENERATED ALWAYS AS (id * 2) STORED)",
		"INSERT INTO t (id, email) VALUES (1, 'a'), (2, 'b')",
		"CREATE TABLE d (id int PRIMARY KEY, email text, c int, CONSTRAINT d_c UNIQUE (c) DEFERRABLE)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const alter = "ADD CONSTRAINT t_email_key UNIQUE (email)"
	in, err := pgInspect(t, pool, "t")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := pgShadow(t, pool, "t", alter)
	if err != nil {
		t.Fatal(err)
	}
	aside := pgTestSchema + "._t_osd"
	t.Cleanup(func() { _ = DropPostgresTable(context.Background(), pool, pgTestSchema, "_t_osd") })
	if got := PostgresAside(sh.Plan); got != `"`+pgTestSchema+`"."_t_osd"` {
		t.Errorf("PostgresAside = %s", got)
	}
	if got := pgQueryOne[string](t, pool, "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attidentity::text || attgenerated::text, ',' ORDER BY attnum) "+
		"FROM pg_attribute WHERE attrelid = '"+aside+"'::regclass AND attnum > 0 AND NOT attisdropped"); got != "id:integer:,email:text:,n:integer:" {
		t.Errorf("the aside table's columns: %s", got)
	}
	if got := pgQueryOne[string](t, pool, "SELECT string_agg(pg_get_indexdef(indexrelid), '; ') FROM pg_index WHERE indrelid = '"+aside+"'::regclass"); got != "CREATE UNIQUE INDEX _t_osd_pkey ON "+pgTestSchema+"._t_osd USING btree (id)" {
		t.Errorf("the aside table's indexes: %s", got)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+aside+" VALUES (1, 'a', 1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := RebuildPostgresShadow(ctx, pool, in, alter, time.Second); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n := pgQueryOne[int](t, pool, "SELECT count(*) FROM "+aside); n != 1 {
		t.Errorf("after the resumed run's plan the aside table holds %d rows, want 1", n)
	}
	if _, err := pool.Exec(ctx, "DROP TABLE "+aside+", "+pgTestSchema+"._t_osc"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgShadow(t, pool, "t", "ADD COLUMN z int"); err != nil {
		t.Fatal(err)
	}
	if pgTestExists(t, pool, "_t_osd") {
		t.Error("a plan without a new unique key has a table of rows set aside")
	}
	_, err = pgShadow(t, pool, "d", "ADD CONSTRAINT d_email UNIQUE (email)")
	wantErr(t, err, "deferrable constraint")
}
