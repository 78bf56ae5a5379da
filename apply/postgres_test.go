package apply

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/cdc"
	"osc/copier"
	"osc/internal/testdb"
	"osc/internal/testplan"
	"osc/table"
)

const pgTestSchema = "pgdata_test_apply"

// pgTestPool connects to the sandbox with a session time zone far from the
// walsender's UTC, and creates a fresh test schema, dropped when the test ends.
func pgTestPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "America/St_Johns"
	pool := testdb.OpenPostgres(t, cfg)
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	return pool
}

// pgTestPlan maps src's columns to the same-named columns of shadow.
func pgTestPlan(t *testing.T, pool *pgxpool.Pool, src, shadow string) *table.Plan {
	t.Helper()
	return schemaPlan(t, pool, pgTestSchema, src, shadow)
}

// schemaPlan is pgTestPlan in another schema.
func schemaPlan(t testing.TB, pool *pgxpool.Pool, schema, src, shadow string) *table.Plan {
	t.Helper()
	tb, key, idx := testplan.PostgresTable(t, pool, schema, src)
	sh, _, _ := testplan.PostgresTable(t, pool, schema, shadow)
	p := &table.Plan{Source: tb, Shadow: sh, Key: key, KeyIndex: idx}
	for i, c := range tb.Columns {
		if j := sh.ColumnIndex(c.Name); !c.Generated && j >= 0 && !sh.Columns[j].Generated {
			p.Mapping = append(p.Mapping, table.ColumnMap{Source: c.Name, Shadow: c.Name, SourceIndex: i})
		}
	}
	return p
}

// schemaRows is the rows of schema.name as text, ordered by id.
func schemaRows(t *testing.T, pool *pgxpool.Pool, schema, name string) string {
	t.Helper()
	var got string
	if err := pool.QueryRow(context.Background(), "SELECT coalesce(string_agg(x::text, ';' ORDER BY id), '') FROM "+schema+"."+name+" x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func pgTestName(t testing.TB) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(pgTestSchema+"_"+t.Name()))
	return n[:min(len(n), 63)]
}

// startSource starts capturing the plan's source; it is closed when the test ends.
func startSource(t testing.TB, pool *pgxpool.Pool, plan *table.Plan) *cdc.PostgresSource {
	t.Helper()
	name := pgTestName(t)
	src, err := cdc.NewPostgres(cdc.PostgresConfig{DSN: testdb.PostgresDSN(), Slot: name, Publication: name}, pool, plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Errorf("close source: %v", err)
		}
	})
	return src
}

// applyUntilMarker emits a marker and applies what the source delivers, limit
// changes per batch, until the marker arrives.
func applyUntilMarker(t *testing.T, src *cdc.PostgresSource, ap *Postgres, limit int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := fmt.Sprintf("m%d", time.Now().UnixNano())
	if err := src.EmitMarker(ctx, id); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		cs, err := src.Next(ctx, limit)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if err := ap.Apply(ctx, cs); err != nil {
			t.Fatal(err)
		}
		n += len(cs)
		src.Ack(cs[len(cs)-1].Pos)
		if last := cs[len(cs)-1]; last.Op == cdc.Marker && last.Marker == id {
			return n
		}
	}
}

// assertSameRows compares two tables row by row as text.
func assertSameRows(t *testing.T, pool *pgxpool.Pool, a, b, orderBy string) {
	t.Helper()
	read := func(name string) []string {
		q := fmt.Sprintf("SELECT x::text FROM %s.%s x ORDER BY %s", pgTestSchema, name, orderBy)
		rows, err := pool.Query(context.Background(), q)
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
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ra, rb := read(a), read(b)
	if len(ra) != len(rb) {
		t.Fatalf("%s has %d rows, %s %d", a, len(ra), b, len(rb))
	}
	for i := range ra {
		if ra[i] != rb[i] {
			t.Errorf("row %d differs:\n%s: %.300s\n%s: %.300s", i, a, ra[i], b, rb[i])
		}
	}
}

// sourceTx runs the statements in one transaction on the source and returns
// its transaction id as pgoutput sends it (32 bits).
func sourceTx(t *testing.T, pool *pgxpool.Pool, stmts ...string) uint32 {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	xid := openTx(t, tx, stmts...)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return xid
}

// openTx runs the statements in tx and returns its transaction id as
// pgoutput sends it (32 bits).
func openTx(t *testing.T, tx pgx.Tx, stmts ...string) uint32 {
	t.Helper()
	ctx := context.Background()
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var xid int64
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	return uint32(xid)
}

func randomText(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rand.IntN(len(chars))]
	}
	return string(b)
}

const typesTable = `CREATE TABLE ` + pgTestSchema + `.types (
	id int PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	num numeric, num2 numeric(12,3),
	f4 real, f8 double precision, f8b double precision,
	t text, vc varchar(20), ch char(5),
	b bytea, bo boolean,
	d date, tm time, ttz timetz, ts timestamp(3), tstz timestamptz,
	iv interval, u uuid, j json, jb jsonb,
	ai integer[], at text[],
	m ` + pgTestSchema + `.mood, dm ` + pgTestSchema + `.posint,
	g integer GENERATED ALWAYS AS (i2 + 1) STORED,
	big text)`

// typesRows are INSERT values (all columns but g) covering edge values.
var typesRows = []string{
	`(1, -32768, -2147483648, -9223372036854775808,
	  '-123456789012345678901234567890.123456789012345678901234567890123', 123456789.123,
	  'NaN', '-0', 1e-310,
	  E'tab\there "quote" \\ backslash ünïcode 🙂 \n newline', 'varchar', 'ab',
	  '\x00ff005c7830'::bytea, true,
	  '0044-03-15 BC', '23:59:59.999999', '12:34:56.5+05:30', '2024-02-29 12:00:00.123', '2024-06-01 12:00:00.123456+02',
	  '1 year 2 mons -3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	  '{"b" : 1,   "a":[1, 2.50]  }', '{"b": 1, "a": [1, 2.50]}',
	  '{1,NULL,3}', '{"a b",NULL,"c,d","\"q\"","NULL",""}',
	  'happy', 5, 'BIG1')`,
	`(2, 32767, 2147483647, 9223372036854775807, 'NaN', -0.001,
	  'Infinity', '-Infinity', 0.1,
	  '', 'x', 'abcde', ''::bytea, false,
	  'infinity', '00:00:00', '00:00:00-12', '-infinity', 'infinity',
	  '-1000 years -3 mons -45 days -12:34:56.000001', '00000000-0000-0000-0000-000000000000',
	  '[]', '{}', '{}', '{}', 'sad', 2147483647, 'small')`,
	`(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(4, 1, 1, 1, 1e-20, 1, 3.4028235e+38, 1.7976931348623157e+308, 4.9e-324,
	  'x', 'y', 'z', '\x01'::bytea, true,
	  '2000-01-01', '12:00', '12:00:00+00', '1999-12-31 23:59:59.999', '1970-01-01 00:00:00+00:09:21',
	  '-1 days +02:03:04', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'null', 'null', '{-1}', '{"\\\\"}', 'ok', 1, 'BIG4')`,
}

func TestPostgresRoundTripTypes(t *testing.T) {
	pool := pgTestPool(t)
	big1, big4, big5 := randomText(150_000), randomText(120_000), randomText(110_000)
	sub := func(q string) string {
		return strings.NewReplacer("'BIG1'", "'"+big1+"'", "'BIG4'", "'"+big4+"'").Replace(q)
	}
	cols := "(id, i2, i4, i8, num, num2, f4, f8, f8b, t, vc, ch, b, bo, d, tm, ttz, ts, tstz, iv, u, j, jb, ai, at, m, dm, big)"
	testdb.ExecPostgres(t, pool,
		"CREATE TYPE "+pgTestSchema+".mood AS ENUM ('sad', 'ok', 'happy')",
		"CREATE DOMAIN "+pgTestSchema+".posint AS integer CHECK (VALUE > 0)",
		typesTable,
		"CREATE TABLE "+pgTestSchema+"._types_new (LIKE "+pgTestSchema+".types INCLUDING ALL)",
		// Rows that exist before capture starts reach the shadow by the copy.
		"INSERT INTO "+pgTestSchema+".types "+cols+" VALUES "+sub(typesRows[3]),
	)
	plan := pgTestPlan(t, pool, "types", "_types_new")
	src := startSource(t, pool, plan)
	cp := copier.NewPostgres(pool, plan)
	if ch, err := cp.CopyChunk(context.Background(), nil, 100); err != nil || !ch.Done || ch.Rows != 1 {
		t.Fatalf("copy: %+v %v", ch, err)
	}
	ap := NewPostgres(pool, plan)
	tbl := pgTestSchema + ".types"
	testdb.ExecPostgres(t, pool,
		"INSERT INTO "+tbl+" "+cols+" VALUES "+sub(strings.Join(typesRows[:3], ",")),
		// TOAST unchanged: only i4 and g are sent with the new row.
		"UPDATE "+tbl+" SET i4 = 42 WHERE id = 1",
		"UPDATE "+tbl+" SET i4 = 43 WHERE id = 4", // the copied row
		// Key changes, one with an unchanged TOAST value.
		"UPDATE "+tbl+" SET id = 20 WHERE id = 2",
		"UPDATE "+tbl+" SET id = 10, t = 'moved' WHERE id = 1",
		"DELETE FROM "+tbl+" WHERE id = 3",
		// The same row several times in one transaction, a row inserted and
		// deleted, a row deleted and inserted again.
		"BEGIN; INSERT INTO "+tbl+" (id, t, big) VALUES (5, 'five', '"+big5+"'); UPDATE "+tbl+" SET t = 'five2' WHERE id = 5; "+
			"UPDATE "+tbl+" SET t = 'five3', i8 = 5 WHERE id = 5; INSERT INTO "+tbl+" (id) VALUES (6); DELETE FROM "+tbl+" WHERE id = 6; "+
			"DELETE FROM "+tbl+" WHERE id = 20; INSERT INTO "+tbl+" (id, t) VALUES (20, 'again'); COMMIT",
		"UPDATE "+tbl+" SET big = NULL WHERE id = 4",
		"UPDATE "+tbl+" SET big = 'short now' WHERE id = 5",
	)
	applyUntilMarker(t, src, ap, 3)
	assertSameRows(t, pool, "types", "_types_new", "id")

	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgTestSchema+"._types_new WHERE id = 10 AND big = $1", big1).Scan(&n); err != nil || n != 1 {
		t.Errorf("moved row keeps its big value: %d rows, %v", n, err)
	}
	// Large batches take the multi-row paths.
	testdb.ExecPostgres(t, pool,
		"INSERT INTO "+tbl+" (id, i4, t) SELECT g, g, 't' || g FROM generate_series(100, 399) g",
		"UPDATE "+tbl+" SET t = t || '!' WHERE id % 3 = 0",
		"DELETE FROM "+tbl+" WHERE id % 7 = 0",
		"UPDATE "+tbl+" SET id = id + 1000 WHERE id BETWEEN 200 AND 250")
	applyUntilMarker(t, src, ap, 1000)
	assertSameRows(t, pool, "types", "_types_new", "id")
}

// A partial change to a row the shadow does not hold yet updates nothing.
func TestPostgresPartialUpdateOfMissingRow(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (2, 'new', 'kept')",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 'old', 'kept')")
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 3, v = 'newer' WHERE id = 2")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "v", nil}, Unchanged: []bool{false, false, true}},
		{Op: cdc.Update, After: cdc.Row{"2", "new", nil}, Unchanged: []bool{false, false, true}},
		{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"3", "newer", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
		{Op: cdc.Marker, Marker: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "(3,newer,kept)" {
		t.Errorf("shadow %s", got)
	}
}

// A partial key-changing update whose new key a chunk already copied (the
// copy read the row after the update committed, and after a later update):
// the old row goes, the copied row gets the carried columns and keeps its
// unchanged one; no duplicate key.
func TestPostgresPartialMoveOntoCopiedKey(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (2, 'old', 'kept too')",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 'old', 'kept too')")
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 3, v = 'moved' WHERE id = 2")
	testdb.ExecPostgres(t, pool,
		"UPDATE "+pgTestSchema+".t SET v = 'copied' WHERE id = 3",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t WHERE id = 3")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"3", "moved", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != `(3,moved,"kept too")` {
		t.Errorf("shadow %s", got)
	}
}

// A move during the copy deletes the old row before it inserts the new one:
// a secondary unique value the row keeps does not clash with itself.
func TestPostgresPartialMoveWithUniqueIndex(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, u int UNIQUE, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (2, 20, 'kept')",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (2, 20, 'kept')")
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 3 WHERE id = 2")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"3", "20", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != `(3,20,kept)` {
		t.Errorf("shadow %s", got)
	}
}

// The shadow's types differ from the source's (int → bigint key, text →
// varchar, a new column, an identity column): values go through the source
// type, then the assignment cast, as in the copy.
func TestPostgresApplyAlteredShadow(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, n numeric(10,2), s text, seq int GENERATED ALWAYS AS IDENTITY)",
		"CREATE TABLE "+pgTestSchema+"._t_new (id bigint PRIMARY KEY, n integer, s varchar(5), seq int GENERATED ALWAYS AS IDENTITY, extra text DEFAULT 'd')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"1", "2.50", "abc", "7"}},
		{Op: cdc.Insert, After: cdc.Row{"2", "3.49", "de", "8"}},
		{Op: cdc.Update, After: cdc.Row{"1", "2.51", "abcd", "7"}},
		{Op: cdc.Update, Before: cdc.Row{"2", nil, nil, nil}, After: cdc.Row{"3", "1", "x", "8"}},
		{Op: cdc.Insert, After: cdc.Row{"4", "0", "y", "9"}},
		{Op: cdc.Delete, Before: cdc.Row{"4", nil, nil, nil}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "(1,3,abcd,7,d);(3,1,x,8,d)"
	if got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
	// A value the shadow rejects fails the batch, which leaves nothing behind.
	err = ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"5", "1", "ok", "1"}},
		{Op: cdc.Insert, After: cdc.Row{"6", "1", "too long", "1"}},
	})
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("apply: %v", err)
	}
	// Also when the failing statement is not the first.
	err = ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"5", "1", "ok", "1"}},
		{Op: cdc.Delete, Before: cdc.Row{"1", nil, nil, nil}},
		{Op: cdc.Update, After: cdc.Row{"3", "1", "x", "8"}, Unchanged: []bool{false, false, false, true}},
		{Op: cdc.Insert, After: cdc.Row{"6", "1", "too long", "1"}},
	})
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("apply: %v", err)
	}
	var after string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&after); err != nil || after != want {
		t.Errorf("after failed batches: %s, %v; want %s", after, err, want)
	}
}

// Changes apply in commit order also with respect to another unique index:
// a value moves from one row to another within one batch.
func TestPostgresApplyOrderWithUniqueIndex(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, email text UNIQUE)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, 'x'), (2, 'y')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "q"}},
		{Op: cdc.Update, After: cdc.Row{"2", "x"}},
		{Op: cdc.Update, After: cdc.Row{"1", "y"}},
		{Op: cdc.Delete, Before: cdc.Row{"2", nil}},
		{Op: cdc.Insert, After: cdc.Row{"3", "x"}},
		{Op: cdc.Update, After: cdc.Row{"1", "z"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SELECT string_agg(x::text, ';' ORDER BY id) FROM "+pgTestSchema+"._t_new x").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "(1,z);(3,x)"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}

// An exclusion constraint (immediate) is checked at each row a statement
// writes, and the clash resolution leaves it alone: the changes are written in
// their order. Collapsed to each key's last row, row 2 (taking row 1's range)
// was written before row 1 (giving it up in its first change, which the
// collapse dropped): conflicting key value violates exclusion constraint.
func TestPostgresApplyOrderWithExclusionConstraint(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, r int4range, EXCLUDE USING gist (r WITH &&))",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (1, '[10,20)'), (2, '[20,30)'), (3, '[30,40)')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "[-20,-10)"}},
		{Op: cdc.Update, After: cdc.Row{"2", "[10,20)"}},
		{Op: cdc.Update, After: cdc.Row{"1", "[20,30)"}},
		{Op: cdc.Delete, Before: cdc.Row{"3", nil}},
		{Op: cdc.Insert, After: cdc.Row{"4", "[30,40)"}},
		{Op: cdc.Update, After: cdc.Row{"4", "[35,45)"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := schemaRows(t, pool, pgTestSchema, "_t_new"), `(1,"[20,30)");(2,"[10,20)");(4,"[35,45)")`; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}

// A partial key-changing update whose old row the copy has not reached, onto
// a key in a range the copy has passed: the copy will never bring the row
// (its old key is gone from the source), so the applier reads it from the
// source under its new key, unchanged TOASTed column included. Changes after
// the move in the same Apply are applied after it, and applying the whole
// batch again changes nothing.
func TestPostgresPartialMoveOfUncopiedRow(t *testing.T) {
	pool := pgTestPool(t)
	big := randomText(100_000)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', 'b1'), (2, 'two', 'b2'), (3, 'three', '"+big+"'), (4, 'four', 'b4')",
		// The copy has done (0, 2].
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t WHERE id <= 2")
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 0, v = 'zero' WHERE id = 3")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	changes := []cdc.Change{
		{Op: cdc.Update, After: cdc.Row{"1", "uno", nil}, Unchanged: []bool{false, false, true}},
		{Op: cdc.Update, Before: cdc.Row{"3", nil, nil}, After: cdc.Row{"0", "zero", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
		// Not in the source: shows that it is applied after the move.
		{Op: cdc.Update, After: cdc.Row{"0", "after", nil}, Unchanged: []bool{false, false, true}},
	}
	for range 2 {
		if err := ap.Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, "SELECT string_agg(format('%s,%s,%s', id, v, length(big)), ';' ORDER BY id) FROM "+pgTestSchema+"._t_new").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := "0,after,100000;1,uno,2;2,two,2"; got != want {
			t.Errorf("shadow %s, want %s", got, want)
		}
		var same bool
		if err := pool.QueryRow(ctx, "SELECT s.big = o.big FROM "+pgTestSchema+"._t_new s, "+pgTestSchema+".t o WHERE s.id = 0 AND o.id = 0").Scan(&same); err != nil || !same {
			t.Errorf("moved row's big value equals the source's: %v, %v", same, err)
		}
	}
}

// The same move when a later transaction deleted the row from the source:
// the source shows nothing under the new key, and the move writes nothing
// there (the later delete follows in the stream), also when the old key was
// taken again meanwhile.
func TestPostgresPartialMoveOfDeletedRow(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', 'b1'), (2, 'two', 'b2'), (3, 'three', '"+randomText(100_000)+"')",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t WHERE id <= 2")
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 0 WHERE id = 3")
	testdb.ExecPostgres(t, pool, "DELETE FROM "+pgTestSchema+".t WHERE id = 0")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	move := []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"3", nil, nil}, After: cdc.Row{"0", "three", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
	}
	for _, then := range []string{"", "INSERT INTO " + pgTestSchema + ".t VALUES (3, 'new three', 'b3')"} {
		if then != "" {
			testdb.ExecPostgres(t, pool, then)
		}
		if err := ap.Apply(ctx, move); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, "SELECT string_agg(id::text, ',' ORDER BY id) FROM "+pgTestSchema+"._t_new").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != "1,2" {
			t.Errorf("shadow ids %s, want 1,2", got)
		}
	}
}

// The move is applied before its transaction is visible (its change is
// decoded first, and a synchronous standby or a busy machine can hold the
// commit invisible for any time): the move waits for it, however long, and
// then reads the row under its new key.
func TestPostgresPartialMoveNotYetVisible(t *testing.T) {
	pool := pgTestPool(t)
	big := randomText(100_000)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', 'b1'), (3, 'three', '"+big+"')",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t WHERE id <= 2")
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	xid := openTx(t, tx, "UPDATE "+pgTestSchema+".t SET id = 0 WHERE id = 3")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	done := make(chan error, 1)
	go func() {
		done <- ap.Apply(ctx, []cdc.Change{
			{Op: cdc.Update, Before: cdc.Row{"3", nil, nil}, After: cdc.Row{"0", "three", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("the move was applied before its transaction committed: %v", err)
	case <-time.After(time.Second):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var same bool
	if err := pool.QueryRow(ctx, "SELECT s.big = o.big FROM "+pgTestSchema+"._t_new s, "+pgTestSchema+".t o WHERE s.id = 0 AND o.id = 0").Scan(&same); err != nil || !same {
		t.Errorf("moved row's big value equals the source's: %v, %v", same, err)
	}
}

// Issue 8: a chunk read the source after a row with a big TOASTed value had
// moved away from key 10 and another row had taken that key; the moved row
// lay beyond the chunk. The moves, applied afterwards, carry no big value
// (unchanged): taking it from the row the shadow holds under the old key
// gave the moved row the other row's value (NULL), and the last chunk,
// finding the new key taken, kept it.
func TestPostgresPartialMoveAfterChunkSawKeyReused(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"ALTER TABLE "+pgTestSchema+".t ALTER big SET STORAGE EXTERNAL",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (10, 'big row', repeat(md5('x'), 400)), (5, 'small row', NULL)")
	plan := pgTestPlan(t, pool, "t", "_t_new")
	src := startSource(t, pool, plan)
	tbl := pgTestSchema + ".t"
	testdb.ExecPostgres(t, pool,
		"UPDATE "+tbl+" SET id = 20 WHERE id = 10",
		"UPDATE "+tbl+" SET id = 10 WHERE id = 5",
		"UPDATE "+tbl+" SET id = 30, v = 'moved twice' WHERE id = 20")
	ctx := context.Background()
	cp := copier.NewPostgres(pool, plan)
	first, err := cp.CopyChunk(ctx, nil, 1)
	if err != nil || first.Done {
		t.Fatalf("copy the first chunk: %+v %v", first, err)
	}
	ap := NewPostgres(pool, plan)
	applyUntilMarker(t, src, ap, 100)
	if last, err := cp.CopyChunk(ctx, first.Last, 100); err != nil || !last.Done {
		t.Fatalf("copy the last chunk: %+v %v", last, err)
	}
	assertSameRows(t, pool, "t", "_t_new", "id")
}

// Once the copy is over (CopyDone), the cut-over holds the source locked while
// it waits for the applier to drain: a move is then made within the shadow,
// whose old row is the moved row. Before that, a move reads the source and
// waits for any lock on it.
func TestPostgresPartialMoveWhileSourceLocked(t *testing.T) {
	pool := pgTestPool(t)
	big := randomText(100_000)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', '"+big+"'), (2, 'two', '"+big+"')",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	lock := func() pgx.Tx {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(ctx) })
		if _, err := tx.Exec(ctx, "LOCK TABLE "+pgTestSchema+".t IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	shadow := func() string {
		var got string
		if err := pool.QueryRow(ctx, "SELECT string_agg(format('%s,%s,%s', id, v, s.big = $1), ';' ORDER BY id) FROM "+pgTestSchema+"._t_new s", big).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	// During the copy: the move reads the source, and waits for the lock.
	xid := sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 20, v = 'twenty' WHERE id = 2")
	other := lock()
	done := make(chan error, 1)
	go func() {
		done <- ap.Apply(ctx, []cdc.Change{
			{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"20", "twenty", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("the move did not wait for the lock during the copy: %v", err)
	case <-time.After(time.Second):
	}
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := shadow(), "1,one,t;20,twenty,t"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}

	// The cut-over, after the copy: the move is made within the shadow.
	ap.CopyDone()
	xid = sourceTx(t, pool, "UPDATE "+pgTestSchema+".t SET id = 10, v = 'ten' WHERE id = 1")
	cutOver := lock()
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"1", nil, nil}, After: cdc.Row{"10", "ten", nil}, Unchanged: []bool{false, false, true}, Xid: xid},
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := shadow(), "10,ten,t;20,twenty,t"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
	if err := cutOver.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// A move read the source after the row had moved on from its new key and
// another row (with no big value) had taken that key, so it wrote that row's
// value there. After the copy, the cut-over holds the source locked while the next move
// of the row, from that key, is applied: taking the value from the shadow
// would carry the other row's NULL along, so it waits for the lock and reads
// the source.
func TestPostgresPartialMoveAfterAheadRead(t *testing.T) {
	pool := pgTestPool(t)
	big := randomText(100_000)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, v text, big text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+".t VALUES (1, 'one', '"+big+"')",
		"INSERT INTO "+pgTestSchema+"._t_new SELECT * FROM "+pgTestSchema+".t")
	tbl := pgTestSchema + ".t"
	first := sourceTx(t, pool, "UPDATE "+tbl+" SET id = 2 WHERE id = 1")
	second := sourceTx(t, pool, "UPDATE "+tbl+" SET id = 3 WHERE id = 2")
	testdb.ExecPostgres(t, pool, "INSERT INTO "+tbl+" VALUES (2, 'other', NULL)")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	ctx := context.Background()
	if err := ap.Apply(ctx, []cdc.Change{
		{Op: cdc.Update, Before: cdc.Row{"1", nil, nil}, After: cdc.Row{"2", "one", nil}, Unchanged: []bool{false, false, true}, Xid: first},
	}); err != nil {
		t.Fatal(err)
	}
	if ap.Settled(cdc.LSN(0)) {
		t.Fatal("settled, with a read ahead of the applier")
	}
	ap.CopyDone()
	cutOver, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cutOver.Rollback(ctx)
	if _, err := cutOver.Exec(ctx, "LOCK TABLE "+tbl+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- ap.Apply(ctx, []cdc.Change{
			{Op: cdc.Update, Before: cdc.Row{"2", nil, nil}, After: cdc.Row{"3", "one", nil}, Unchanged: []bool{false, false, true}, Xid: second},
			{Op: cdc.Insert, After: cdc.Row{"2", "other", nil}},
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("the move was made within the shadow: %v", err)
	case <-time.After(time.Second):
	}
	if err := cutOver.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertSameRows(t, pool, "t", "_t_new", "id")
	if !ap.Settled(cdc.LSN(math.MaxUint64)) {
		t.Error("not settled once every change was applied")
	}
}

// pgFullXid maps pgoutput's 32-bit xid to the full id within 2^31 of a
// snapshot's xmax, in every epoch, also at or above xmax (a transaction
// decoded before it became visible).
func TestPostgresFullXid(t *testing.T) {
	pool := pgTestPool(t)
	const e = int64(1) << 32
	for _, tc := range []struct{ xid, xmax, want int64 }{
		{90, 100, 90},
		{100, 100, 100}, // at xmax: not visible yet
		{150, 100, 150}, // above xmax
		{90, e + 100, e + 90},
		{100, e + 100, e + 100}, // epoch 1, at xmax: must not fall into epoch 0
		{200, e + 100, e + 200},
		{4294967290, e + 5, 4294967290}, // just before the epoch boundary
		{3, e - 5, e + 3},               // just after it
	} {
		var got string
		if err := pool.QueryRow(context.Background(), "SELECT "+pgFullXid("$1::bigint", "$2::bigint")+"::text",
			tc.xid, tc.xmax).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != fmt.Sprint(tc.want) {
			t.Errorf("pgFullXid(%d, xmax %d) = %s, want %d", tc.xid, tc.xmax, got, tc.want)
		}
	}
}

// The batch statements' text[] parameters (pgTextArray) carry a value as
// pgoutput sends it: NULL stays NULL, an empty string stays empty, and a
// []byte is its text, in upserts and in deletes' keys alike.
func TestPostgresApplyTextForms(t *testing.T) {
	pool := pgTestPool(t)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+pgTestSchema+".t (id int PRIMARY KEY, a text, b text)",
		"CREATE TABLE "+pgTestSchema+"._t_new (LIKE "+pgTestSchema+".t INCLUDING ALL)",
		"INSERT INTO "+pgTestSchema+"._t_new VALUES (4, 'x', 'y')")
	ap := NewPostgres(pool, pgTestPlan(t, pool, "t", "_t_new"))
	if err := ap.Apply(context.Background(), []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{"1", nil, ""}},
		{Op: cdc.Insert, After: cdc.Row{[]byte("2"), []byte("two"), []byte(nil)}},
		{Op: cdc.Insert, After: cdc.Row{"3", "", nil}},
		{Op: cdc.Delete, Before: cdc.Row{[]byte("4"), nil, nil}},
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(context.Background(), "SELECT string_agg(format('%s,%s,%s', id, coalesce(a, 'NULL'), coalesce(b, 'NULL')), ';' ORDER BY id) FROM "+pgTestSchema+"._t_new").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1,NULL,;2,two,;3,,NULL"; got != want {
		t.Errorf("shadow %s, want %s", got, want)
	}
}
