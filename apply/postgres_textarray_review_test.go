package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

// pgarraySchema is the schema of the text[] parameter tests: their own, with
// the types they create.
const pgarraySchema = "pgarray_apply"

// pgarrayDiff is the rows of a and b (tables of schema, compared by their
// text forms, which tell NULL, the empty string and 'NULL' apart, and
// money's values as equality would not) that one holds and the other lacks;
// nothing when they hold the same rows.
func pgarrayDiff(t *testing.T, pool *pgxpool.Pool, schema, a, b string) string {
	t.Helper()
	var got string
	q := "SELECT coalesce(string_agg(d, E'\\n' ORDER BY d), '') FROM (" +
		"(SELECT '-' || x::text AS d FROM " + schema + "." + a + " x EXCEPT ALL SELECT '-' || y::text FROM " + schema + "." + b + " y) UNION ALL " +
		"(SELECT '+' || y::text FROM " + schema + "." + b + " y EXCEPT ALL SELECT '+' || x::text FROM " + schema + "." + a + " x)) s"
	if err := pool.QueryRow(context.Background(), q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// The batch statements carry each column as a text[] parameter of pgoutput's
// text forms (pgTextArray), unnested and cast to the column's type; the
// deletes carry the keys the same way. Values whose text form a text array
// must quote or escape ('NULL', the empty string, leading and trailing blanks, braces,
// commas, quotes, backslashes, newlines), as keys and as values, and types
// whose text form has its own syntax (composite, bit strings, money, numeric
// infinities, "char", two-dimensional arrays, ranges, inet, tsvector, point,
// box[], whose elements a semicolon separates) reach the shadow as the source holds them, through real pgoutput,
// with REPLICA IDENTITY DEFAULT (deletes carry the key) and FULL (they carry
// the whole old row).
func TestPostgresApplyTextArrayEdgeValues(t *testing.T) {
	for _, identity := range []string{"DEFAULT", "FULL"} {
		t.Run(identity, func(t *testing.T) {
			pool, s := pgarrayPool(t), pgarraySchema
			testdb.ExecPostgres(t, pool,
				"CREATE TYPE "+s+".pair AS (a int, b text)",
				"CREATE TABLE "+s+".t (k text PRIMARY KEY, v text, vc varchar(40), ch \"char\", comp "+s+".pair, "+
					"bits bit(5), vb varbit, mon money, n numeric, a2 int[], t2 text[], r tstzrange, ip inet, tsv tsvector, pt point, bx box[])",
				"ALTER TABLE "+s+".t REPLICA IDENTITY "+identity,
				"CREATE TABLE "+s+"._t_new (LIKE "+s+".t INCLUDING ALL)")
			ap := NewPostgres(pool, schemaPlan(t, pool, s, "t", "_t_new"))
			src := startSource(t, pool, ap.plan)

			// Each text is a key and the value of v, vc and ch (its first
			// byte: "char" writes a non-ASCII byte as an octal escape).
			texts := []string{"NULL", "null", "", " ", " lead", "trail ", "a,b", "{x}", `{"y",NULL}`, `"q"`, `back\slash`, `\\`,
				"new\nline", "tab\t", "ünïcödé 🙂", "ROW(1)", "'apos'", strings.Repeat("long ", 3000)}
			var vals []string
			for i, x := range texts {
				lit := "'" + strings.ReplaceAll(x, "'", "''") + "'"
				vc := lit
				if len(x) > 40 {
					vc = "'long'"
				}
				vals = append(vals, "("+lit+", "+lit+", "+vc+", "+lit+", "+
					[]string{`'(1,"")'`, `'(,)'`, `'(-2,"NULL")'`, `'(3,"a,b ""q"" \\")'`, `ROW(NULL, 'x')`}[i%5]+", "+
					[]string{"B'10101'", "NULL", "B'00000'"}[i%3]+", "+
					[]string{"B''", "B'1'", "NULL", "B'0110011'"}[i%4]+", "+
					[]string{"'-$1,234.56'", "0", "'92233720368547758.07'", "NULL"}[i%4]+", "+
					[]string{"'Infinity'", "'-Infinity'", "'NaN'", "-0.000", "1e-30", "NULL"}[i%6]+", "+
					[]string{"'{{1,NULL},{3,4}}'", "'{}'", "NULL", "'[0:1]={5,6}'"}[i%4]+", "+
					[]string{`'{{"a b",NULL},{"NULL",""}}'`, `'{"{}",","}'`, "NULL"}[i%3]+", "+
					[]string{"'[2024-06-01 12:00:00.5+02,infinity)'", "'empty'", "NULL", "'(,2000-01-01 00:00:00-03:30]'"}[i%4]+", "+
					[]string{"'192.168.0.1/24'", "'::1'", "NULL"}[i%3]+", "+
					[]string{`'a:1 b:2B ''x y'':3'`, "''", "NULL"}[i%3]+", "+
					[]string{"'(1.5,-0)'", "NULL", "'(1e300,NaN)'"}[i%3]+", "+
					[]string{"'{(1,2),(3,4);(5,6),(7,8)}'", "'{}'", "NULL"}[i%3]+")")
			}
			tbl := s + ".t"
			testdb.ExecPostgres(t, pool, "INSERT INTO "+tbl+" VALUES "+strings.Join(vals, ", "))
			applyUntilMarker(t, src, ap, 1000)
			if d := pgarrayDiff(t, pool, s, "t", "_t_new"); d != "" {
				t.Fatalf("after the inserts, the shadow differs (- source only, + shadow only):\n%.3000s", d)
			}
			// Whole-row updates (upserts), deletes of keys that need quoting
			// in a text array, key changes (a delete and an upsert), in
			// one batch, then in smaller ones.
			testdb.ExecPostgres(t, pool,
				"UPDATE "+tbl+" SET v = v || ' ,{}\"\\', ch = 'Z', comp = ROW((comp).a, (comp).b || ',')::"+s+".pair WHERE (comp).b IS NULL OR k IN ('null', '')",
				"UPDATE "+tbl+" SET comp = NULL, bx = '{(0,0),(-1,-1)}' WHERE k IN ('NULL', ' lead')",
				"DELETE FROM "+tbl+" WHERE k IN ('NULL', '', ' ', 'a,b', '\"q\"', 'new\nline', '\\\\')",
				"UPDATE "+tbl+" SET k = k || '2', v = NULL WHERE k IN ('null', 'trail ', '{x}', 'back\\slash')")
			for _, limit := range []int{1000, 3, 1} {
				testdb.ExecPostgres(t, pool,
					"INSERT INTO "+tbl+" (k, v) VALUES ('NULL', ''), ('', 'NULL')",
					"UPDATE "+tbl+" SET n = n + 1, v = coalesce(v, 'NULL') || 'x' WHERE k <> ''",
					"DELETE FROM "+tbl+" WHERE k IN ('NULL', '', 'tab\t')")
				applyUntilMarker(t, src, ap, limit)
				if d := pgarrayDiff(t, pool, s, "t", "_t_new"); d != "" {
					t.Fatalf("batches of %d: the shadow differs (- source only, + shadow only):\n%.3000s", limit, d)
				}
			}
		})
	}
}

// An update that leaves a key stored out of line (TOAST) unchanged reaches
// the applier with the key as an unchanged TOAST value ('u') and, since
// PostgreSQL logs the old key whenever a key column is stored out of line,
// with the old key: the applier takes it for a move to the same key. The row
// must keep its key and its other unchanged TOAST value and take the
// change's values, during the copy (the move reads the source) and after it
// (the move within the shadow), with REPLICA IDENTITY DEFAULT and FULL (which
// sends the old row with every update, the partial ones too).
func TestPostgresApplyToastedKeyUnchanged(t *testing.T) {
	for _, identity := range []string{"DEFAULT", "FULL"} {
		t.Run(identity, func(t *testing.T) {
			pool, s := pgarrayPool(t), pgarraySchema
			// A 2,500-byte key that does not compress fits a btree entry and
			// is stored out of line in the row; so is big.
			k1, k2, big := randomText(2500), randomText(2500), randomText(20000)
			testdb.ExecPostgres(t, pool,
				"CREATE TABLE "+s+".t (k text PRIMARY KEY, v int, big text)",
				"ALTER TABLE "+s+".t REPLICA IDENTITY "+identity,
				"CREATE TABLE "+s+"._t_new (LIKE "+s+".t INCLUDING ALL)")
			ap := NewPostgres(pool, schemaPlan(t, pool, s, "t", "_t_new"))
			src := startSource(t, pool, ap.plan)
			tbl := s + ".t"
			testdb.ExecPostgres(t, pool,
				"INSERT INTO "+tbl+" VALUES ('"+k1+"', 1, '"+big+"'), ('"+k2+"', 1, '"+big+"'), ('short', 1, '"+big+"')")
			// Out of line: the TOAST table holds the two long keys and the
			// three bigs. Row 'short' keeps its key in line: its updates
			// are partial (big unchanged), with FULL with the old row.
			var toast string
			if err := pool.QueryRow(context.Background(), "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = '"+tbl+"'::regclass").Scan(&toast); err != nil {
				t.Fatal(err)
			}
			var external int
			if err := pool.QueryRow(context.Background(), "SELECT count(DISTINCT chunk_id) FROM "+toast).Scan(&external); err != nil || external != 5 {
				t.Fatalf("values stored out of line: %d, %v", external, err)
			}
			applyUntilMarker(t, src, ap, 1000)
			testdb.ExecPostgres(t, pool, "UPDATE "+tbl+" SET v = 2")
			applyUntilMarker(t, src, ap, 1000)
			if d := pgarrayDiff(t, pool, s, "t", "_t_new"); d != "" {
				t.Fatalf("during the copy, the shadow differs:\n%.300s", d)
			}
			ap.CopyDone()
			testdb.ExecPostgres(t, pool,
				"UPDATE "+tbl+" SET v = 3",
				"UPDATE "+tbl+" SET v = 4 WHERE k = '"+k1+"'",
				"DELETE FROM "+tbl+" WHERE k = '"+k2+"'")
			applyUntilMarker(t, src, ap, 1000)
			if d := pgarrayDiff(t, pool, s, "t", "_t_new"); d != "" {
				t.Fatalf("after the copy, the shadow differs:\n%.300s", d)
			}
		})
	}
}

// pgarrayPool connects in a session of a time zone not UTC and empties
// pgarraySchema.
func pgarrayPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "America/St_Johns"
	pool := testdb.OpenPostgres(t, cfg)
	testdb.ResetPostgresSchema(t, pool, pgarraySchema)
	return pool
}
