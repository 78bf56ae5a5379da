package checksum

import (
	"context"
	"strings"
	"testing"

	"osc/engine"
	"osc/internal/testdb"
	"osc/table"
)

// TestPostgresChecksumAside: rows set aside (a new unique key) are rows of
// the shadow for the checksum. A row set aside leaves the chunks equal; a
// row aside that differs from the original's is found and described; a
// recopy takes the chunk's keys out of the table of rows set aside and
// copies them into the shadow.
func TestPostgresChecksumAside(t *testing.T) {
	const name = "aside"
	pool := pgckPool(t, "CREATE TABLE "+name+" (id int PRIMARY KEY, e text, v text)",
		"INSERT INTO "+name+" SELECT i, 'e' || i, 'v' || i FROM generate_series(1, 30) i")
	plan := pgckMigrate(t, pool, name, "ADD CONSTRAINT uq UNIQUE (e), ADD COLUMN extra int")
	aside := table.PostgresAside(plan)
	if aside == "" {
		t.Fatal("the plan adds no unique key")
	}
	shadow := table.QuotePostgres(pgckSchema, plan.Shadow.Name)
	testdb.ExecPostgres(t, pool,
		"INSERT INTO "+aside+" (id, e, v) SELECT id, e, v FROM "+shadow+" WHERE id IN (3, 17)",
		"DELETE FROM "+shadow+" WHERE id IN (3, 17)")
	ck := pgckNew(pool, plan, nil)
	res := pgckRequireEqual(t, ck, 7)
	var n int64
	for _, r := range res {
		n += r.shadow.Rows
	}
	if n != 30 {
		t.Errorf("the shadow's side counts %d rows, want 30", n)
	}

	testdb.ExecPostgres(t, pool, "UPDATE "+aside+" SET v = 'bad' WHERE id = 17")
	rs := pgckOpen(t, ck, 2, nil)
	differ := pgckDiffering(pgckSums(t, rs, 7))
	if len(differ) != 1 {
		t.Fatalf("%d chunks differ, want 1", len(differ))
	}
	d, err := rs[1].Diff(context.Background(), differ[0].chunk)
	if err != nil || !strings.Contains(d, `key (id=17): column "v" differs: original "v17", shadow "bad"`) {
		t.Fatalf("diff %q (%v), want id 17's v", d, err)
	}
	if err := ck.Recopy(context.Background(), []engine.ChecksumChunk{differ[0].chunk}); err != nil {
		t.Fatal(err)
	}
	var left []int
	if err := pool.QueryRow(context.Background(), "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM "+aside).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != 3 {
		t.Errorf("rows aside after the recopy %v, want row 3 only", left)
	}
	pgckRequireEqual(t, ck, 7)
}
