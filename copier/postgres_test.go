package copier

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

const pgTestSchema = "pgdata_test_copier"

// pgTestPool connects to the sandbox and creates a fresh test schema, dropped
// when the test ends.
func pgTestPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	return pool
}

// pgTestTable reads a table's columns from the catalog.
func pgTestTable(t *testing.T, pool *pgxpool.Pool, name string) *table.Table {
	t.Helper()
	tb, _, _ := testplan.PostgresTable(t, pool, pgTestSchema, name)
	return tb
}

// pgTestPlan maps src's columns to the same-named columns of shadow, with key.
func pgTestPlan(t *testing.T, pool *pgxpool.Pool, src, shadow string, key ...string) *table.Plan {
	t.Helper()
	tb, sh := pgTestTable(t, pool, src), pgTestTable(t, pool, shadow)
	p := &table.Plan{Source: tb, Shadow: sh, Key: key}
	for _, k := range key {
		p.KeyIndex = append(p.KeyIndex, tb.ColumnIndex(k))
	}
	for i, c := range tb.Columns {
		if j := sh.ColumnIndex(c.Name); !c.Generated && j >= 0 && !sh.Columns[j].Generated {
			p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
		}
	}
	return p
}

func rowsText(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	var s string
	q := fmt.Sprintf("SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY a, b), '') FROM %s.%s x", pgTestSchema, name)
	if err := pool.QueryRow(context.Background(), q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresCopyCompositeKey(t *testing.T) {
	pool := pgTestPool(t)
	tbl := pgTestSchema + ".t"
	testdb.ExecPostgres(t, pool,
		// A text key with mixed case, spaces and non-ASCII, ordered by the
		// column's collation, and a generated column.
		"CREATE TABLE "+tbl+" (a int, b text COLLATE \"C\", v text, g int GENERATED ALWAYS AS (a * 10) STORED, PRIMARY KEY (a, b))",
		"INSERT INTO "+tbl+" (a, b, v) SELECT i % 7 - 3, (ARRAY['x', 'X', 'é', 'a b', '', 'z''q'])[i % 6 + 1] || (i / 42), 'v' || i FROM generate_series(0, 999) i",
		"CREATE TABLE "+pgTestSchema+".s (LIKE "+tbl+" INCLUDING ALL)",
		// The applier wrote these already: the copy must not overwrite them.
		"INSERT INTO "+pgTestSchema+".s (a, b, v) VALUES (-3, 'X0', 'applied'), (3, 'z''q22', 'applied')",
	)
	want := rowsText(t, pool, "t")
	c := NewPostgres(pool, pgTestPlan(t, pool, "t", "s", "a", "b"))
	ctx := context.Background()
	var (
		after  []any
		chunks int
		rows   int64
	)
	for {
		ch, err := c.CopyChunk(ctx, after, 97)
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		rows += ch.Rows
		if ch.Done {
			break
		}
		if len(ch.Last) != 2 || ch.Rows != 97 {
			t.Fatalf("chunk %d: %+v", chunks, ch)
		}
		after = ch.Last
	}
	if chunks != 11 {
		t.Errorf("%d chunks, want 11", chunks)
	}
	// The last chunk counts the rows it inserted.
	if rows < 998 || rows > 1000 {
		t.Errorf("%d rows covered", rows)
	}
	got := rowsText(t, pool, "s")
	want = strings.Replace(want, "(-3,X0,v7,-30)", "(-3,X0,applied,-30)", 1)
	want = strings.Replace(want, "(3,z'q22,v965,30)", "(3,z'q22,applied,30)", 1)
	if got != want {
		t.Errorf("shadow differs from the original:\n%.2000s\nwant:\n%.2000s", got, want)
	}
	if !strings.Contains(got, "(-3,X0,applied,-30)") || !strings.Contains(got, "(3,z'q22,applied,30)") {
		t.Error("the copy overwrote rows already in the shadow")
	}
}

func TestPostgresCopyEdges(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".e (id timestamptz PRIMARY KEY, v int GENERATED ALWAYS AS IDENTITY)",
		"CREATE TABLE "+pgTestSchema+".e2 (LIKE "+pgTestSchema+".e INCLUDING ALL)",
		"CREATE TABLE "+pgTestSchema+".u (a int, b int, PRIMARY KEY (a, b))",
		"CREATE TABLE "+pgTestSchema+".u2 (a bigint, b int, c int UNIQUE, PRIMARY KEY (a, b))",
		"INSERT INTO "+pgTestSchema+".u2 VALUES (1, 1, 1)",
	)
	ctx := context.Background()
	// An empty table is one chunk.
	c := NewPostgres(pool, pgTestPlan(t, pool, "e", "e2", "id"))
	ch, err := c.CopyChunk(ctx, nil, 10)
	if err != nil || !ch.Done || ch.Rows != 0 {
		t.Fatalf("empty table: %+v %v", ch, err)
	}
	// Timestamps with fractions as key bounds, an identity column, and a
	// chunk size that divides the row count.
	// A row inserted above the highest key once the copy started is left to
	// change capture: the copy does not chase it.
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".e (id) SELECT '2024-01-01'::timestamptz + i * interval '1.000001 s' FROM generate_series(1, 20) i")
	c = NewPostgres(pool, pgTestPlan(t, pool, "e", "e2", "id"))
	var after []any
	n := 0
	for {
		ch, err := c.CopyChunk(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".e (id) VALUES ('2030-01-01')")
		}
		n++
		if ch.Done {
			break
		}
		after = ch.Last
	}
	if n != 5 {
		t.Errorf("%d chunks, want 5", n)
	}
	var diff int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT * FROM "+pgTestSchema+".e EXCEPT SELECT * FROM "+pgTestSchema+".e2) x").Scan(&diff); err != nil || diff != 1 {
		t.Errorf("%d rows differ (%v), want only the row inserted above the highest key", diff, err)
	}
	// The copy keeps rows with an existing key; a row that clashes on
	// another unique index of the shadow is skipped and reported, for the
	// applier to refresh (which fails on a real duplicate like this one:
	// the plan refuses a unique index the original does not imply).
	testdb.ExecPostgres(t, pool, "INSERT INTO "+pgTestSchema+".u VALUES (1, 1), (2, 2)")
	c = NewPostgres(pool, pgTestPlan(t, pool, "u", "u2", "a", "b"))
	testdb.ExecPostgres(t, pool, "ALTER TABLE "+pgTestSchema+".u2 ALTER COLUMN c SET DEFAULT 1")
	chunk, err := c.CopyChunk(ctx, nil, 10)
	if err != nil {
		t.Fatalf("copy into a shadow with a clashing unique index: %v", err)
	}
	// (1, 1), whose key the shadow holds, is reported too.
	if got := fmt.Sprint(chunk.Stale); got != "[[1 1] [2 2]]" {
		t.Errorf("stale keys %s, want [[1 1] [2 2]]", got)
	}
	var copied string
	if err := pool.QueryRow(ctx, "SELECT string_agg(format('%s %s %s', a, b, c), ';') FROM "+pgTestSchema+".u2").Scan(&copied); err != nil || copied != "1 1 1" {
		t.Errorf("shadow %q (%v), want 1 1 1", copied, err)
	}
	if _, err := c.CopyChunk(ctx, []any{"1"}, 10); err == nil {
		t.Error("bound with too few values: no error")
	}
}

// The copy analyzes the shadow each time the rows it inserted have doubled
// (from 1,000 on), so that the applier's cached plans are made again for the
// shadow's size (see Postgres.analyze).
func TestPostgresCopyAnalyzes(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".an (id int PRIMARY KEY, v text)",
		"INSERT INTO "+pgTestSchema+".an SELECT i, 'v' || i FROM generate_series(1, 2500) i",
		"CREATE TABLE "+pgTestSchema+".an2 (LIKE "+pgTestSchema+".an INCLUDING ALL)",
	)
	c := NewPostgres(pool, pgTestPlan(t, pool, "an", "an2", "id"))
	ctx := context.Background()
	reltuples := func() float64 {
		t.Helper()
		var n float64
		if err := pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = '"+pgTestSchema+".an2'::regclass").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var after []any
	for chunk := 1; ; chunk++ {
		ch, err := c.CopyChunk(ctx, after, 300)
		if err != nil {
			t.Fatal(err)
		}
		// Analyzed after 1,200 rows (chunk 4), then after 2,400 (chunk 8).
		switch n := reltuples(); {
		case chunk < 4 && n > 0:
			t.Fatalf("after chunk %d the shadow was analyzed (%v rows) before 1,000 rows were copied", chunk, n)
		case chunk >= 4 && chunk < 8 && n != 1200:
			t.Fatalf("after chunk %d the shadow's statistics count %v rows, want 1200 (analyzed at the first 1,000)", chunk, n)
		case chunk >= 8 && n != 2400:
			t.Fatalf("after chunk %d the shadow's statistics count %v rows, want 2400 (analyzed once they doubled)", chunk, n)
		}
		if ch.Done {
			break
		}
		after = ch.Last
	}
}
