package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/copier"
	"osc/internal/testdb"
	"osc/table"
)

const pgUsingSchema = "pgdata_test_apply_using"

// An --alter with USING, copied and applied while the table changes (new
// rows, updates of copied rows, partial updates and key changes of rows
// whose TOASTed value is unchanged, deletes), gives the rows a plain ALTER
// TABLE gives the same final table: the copy and every applied change compute
// the new values with the expression.
func TestPostgresUsingMatchesAlter(t *testing.T) {
	// A schema of its own: the other tests reset theirs.
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, pgUsingSchema)
	for _, c := range []struct{ name, alter string }{
		{"zero", "ALTER COLUMN a TYPE integer USING 0"},
		{"case", "ALTER COLUMN b TYPE text USING CASE WHEN b THEN 'IT WAS TRUE' ELSE 'IT WAS FALSE' END"},
		{"sum", "ALTER COLUMN a TYPE int8 USING a::int8 + n"},
		{"no_assignment_cast", "ALTER COLUMN w TYPE boolean USING w <> 0"},
		{"later_clause", "RENAME COLUMN a TO a2; ALTER COLUMN n TYPE numeric(10,1); " +
			"ALTER COLUMN a2 TYPE text USING a2 || '/' || (n / 3) || '/' || b, ALTER COLUMN s TYPE text USING 'const'"},
		{"qualified", "ALTER COLUMN a TYPE bigint USING {t}.a * 2 + " + pgUsingSchema + ".{t}.n"},
		{"toast", "ALTER COLUMN big TYPE text USING upper(big)"},
		{"key_cast", "ALTER COLUMN id TYPE bigint USING id::bigint, ALTER COLUMN a TYPE text USING 'x' || a, ALTER COLUMN b TYPE int USING b::int"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "u_" + c.name
			testUsingMatchesAlter(t, pool, name, strings.ReplaceAll(c.alter, "{t}", name))
		})
	}
}

func testUsingMatchesAlter(t *testing.T, pool *pgxpool.Pool, name, alter string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl := pgUsingSchema + "." + name
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+tbl+" (id int PRIMARY KEY, a int, n int, b boolean, w bigint, big text, s text)",
		"ALTER TABLE "+tbl+" ALTER COLUMN big SET STORAGE EXTERNAL",
		"INSERT INTO "+tbl+" SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE g * 3 END, g % 7, g % 2 = 0, CASE WHEN g % 3 = 0 THEN 0 ELSE g END, "+
			"CASE WHEN g % 5 = 0 THEN (SELECT string_agg(md5(g::text || s), '') FROM generate_series(1, 400) s) ELSE 'small ' || g END, 's' || g "+
			"FROM generate_series(1, 120) g")
	in, err := table.InspectPostgresTable(ctx, pool, table.NewPostgresNames(pgUsingSchema, name))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := table.CreatePostgresShadow(ctx, pool, in, alter, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plan := sh.Plan
	src := startSource(t, pool, plan)
	ap := NewPostgres(pool, plan)
	cp := copier.NewPostgres(pool, plan)

	// Each round changes rows the copy has passed and rows it has not.
	round := 0
	writes := func() {
		round++
		r, big := round*7, round*5 // big: a row with a TOASTed value, or one that had it
		testdb.ExecPostgres(t, pool,
			fmt.Sprintf("INSERT INTO %s SELECT max(id) + 1, %d, %d, %v, %d, 'new', NULL FROM %s", tbl, r, round%4, round%2 == 0, r%3, tbl),
			fmt.Sprintf("UPDATE %s SET a = a + 1, n = coalesce(n, 0) - 1, b = NOT b, w = w * 3 WHERE id IN (%d, %d)", tbl, r, 120-r),
			fmt.Sprintf("UPDATE %s SET a = coalesce(a, 0) + 7, s = 'p%d' WHERE id IN (%d, %d)", tbl, round, big, 120-big),
			fmt.Sprintf("UPDATE %s SET id = id + 1000, n = n + 1 WHERE id IN (%d, %d)", tbl, big+5, 115-big),
			fmt.Sprintf("UPDATE %s SET id = id + 2000 WHERE id = %d", tbl, big+1000),
			fmt.Sprintf("UPDATE %s SET big = upper(big) || 'x' WHERE id = %d", tbl, big+10),
			fmt.Sprintf("DELETE FROM %s WHERE id IN (%d, %d)", tbl, r+3, 117-r))
	}
	var after []any
	applied := 0
	for {
		ch, err := cp.CopyChunk(ctx, after, 15)
		if err != nil {
			t.Fatal(err)
		}
		writes()
		applied += applyUntilMarker(t, src, ap, 7)
		if ch.Done {
			break
		}
		after = ch.Last
	}
	// After the copy, moves are made within the shadow.
	ap.CopyDone()
	for range 3 {
		writes()
		applied += applyUntilMarker(t, src, ap, 7)
	}
	if applied < 50 {
		t.Fatalf("only %d changes applied", applied)
	}

	// The oracle: the same ALTER on the final table.
	for _, clause := range table.SplitPostgresAlter(alter) {
		testdb.ExecPostgres(t, pool, "ALTER TABLE "+tbl+" "+clause)
	}
	read := func(rel string) []string {
		rows, err := pool.Query(ctx, fmt.Sprintf("SELECT x::text FROM %s x ORDER BY 1", rel))
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
			out = append(out, s)
		}
		return out
	}
	want, got := read(tbl), read(pgUsingSchema+"."+plan.Shadow.Name)
	if len(want) != len(got) {
		t.Errorf("ALTER gives %d rows, osc %d", len(want), len(got))
	}
	diffs := 0
	for i := 0; i < min(len(want), len(got)) && diffs < 10; i++ {
		if want[i] != got[i] {
			diffs++
			t.Errorf("row %d:\nALTER: %.200s\n  osc: %.200s", i, want[i], got[i])
		}
	}
}
