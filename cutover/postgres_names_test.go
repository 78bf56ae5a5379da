package cutover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
	"osc/table"
)

// pgPlainSchema holds the table a plain ALTER TABLE changes, for comparison.
const pgPlainSchema = "pgcut_plain"

// pgCatalogFacts describes table t of schema: the names and states of its
// constraints, indexes, owned sequences (with their parameters and position)
// and statistics, its column options (but pg_attver, the server's own stamp of
// when a column was made, PostgreSQL 15.20 on), clustered and replica identity
// indexes, constraint comments, and its rows; schema names are replaced by
// "S", so that two schemas' tables compare equal.
func pgCatalogFacts(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	ctx := context.Background()
	oid := pgQuery[uint32](t, pool, "SELECT $1::regclass::oid", schema+".t")
	rows, err := pool.Query(ctx, `
		SELECT format('constraint %s %s validated=%s comment=%s', conname, pg_get_constraintdef(oid), convalidated,
			coalesce(obj_description(oid, 'pg_constraint'), '-'))
			FROM pg_constraint WHERE conrelid = $1
		UNION ALL
		SELECT format('index %s clustered=%s replident=%s', pg_get_indexdef(indexrelid), indisclustered, indisreplident)
			FROM pg_index WHERE indrelid = $1
		UNION ALL
		SELECT format('sequence %s of %s type=%s start=%s inc=%s max=%s', q.relname, a.attname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax)
			FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S' JOIN pg_sequence s ON s.seqrelid = q.oid
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.refobjid = $1 AND d.deptype IN ('a', 'i')
		UNION ALL
		SELECT format('statistics %s %s', stxname, pg_get_statisticsobjdef_columns(oid)) FROM pg_statistic_ext WHERE stxrelid = $1
		UNION ALL
		SELECT format('column %s %s options=%s statistics=%s', attname, format_type(atttypid, atttypmod),
				(SELECT array_agg(o) FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_attver=%'), attstattarget)
			FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
		UNION ALL
		SELECT format('index column %s.%s statistics=%s', x.relname, a.attnum, a.attstattarget)
			FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_attribute a ON a.attrelid = i.indexrelid WHERE i.indrelid = $1
		UNION ALL
		SELECT format('replica identity %s', relreplident) FROM pg_class WHERE oid = $1`, oid)
	if err != nil {
		t.Fatal(err)
	}
	facts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	seqs := pgStringsT(t, pool, `SELECT q.oid::regclass::text FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
		WHERE d.classid = 'pg_class'::regclass AND d.refobjid = $1 AND d.deptype IN ('a', 'i')`, oid)
	for _, q := range seqs {
		facts = append(facts, pgQuery[string](t, pool, fmt.Sprintf("SELECT format('sequence %%s at %%s called=%%s', $1::text, last_value, is_called) FROM %s", q), q))
	}
	data := pgStringsT(t, pool, fmt.Sprintf("SELECT x::text FROM %s.t x ORDER BY 1", schema))
	facts = append(facts, "rows "+strings.Join(data, " "))
	for i := range facts {
		facts[i] = strings.ReplaceAll(facts[i], schema+".", "S.")
	}
	slices.Sort(facts)
	return facts
}

func pgStringsT(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// TestPostgresSameAsPlainAlter runs a plain ALTER TABLE on one table and osc
// (shadow, copy, cut-over) on an identical one, and compares the names and
// states a user sees. In alter, {s} is the table's schema.
func TestPostgresSameAsPlainAlter(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup []string
		alter string
	}{
		{"derived names", []string{
			"CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int)",
			"CREATE INDEX ON t (a)",
			"CREATE INDEX t_b ON t (b)",
			"CREATE STATISTICS t_stx ON a, b FROM t",
			"INSERT INTO t SELECT i, i, i, i FROM generate_series(1, 20) i",
		}, "ADD CHECK (c > 0), ADD COLUMN c5 serial, ADD COLUMN c6 int GENERATED ALWAYS AS IDENTITY, ADD CONSTRAINT t_b CHECK (b > 0), ADD UNIQUE (id, c); RENAME COLUMN a TO d"},
		{"names taken elsewhere in the schema", []string{
			"CREATE TABLE other (c int CONSTRAINT t_c_check CHECK (c > 0))",
			"CREATE SEQUENCE t_c5_seq",
			"CREATE TABLE t (id int PRIMARY KEY, c int)",
			"INSERT INTO t SELECT i, i FROM generate_series(2, 20) i",
		}, "ADD CHECK (c > 1), ADD COLUMN c5 serial"},
		{"primary key using an index", []string{
			"CREATE TABLE t (id int, a int NOT NULL)",
			"CREATE UNIQUE INDEX i ON t (a)",
			"ALTER TABLE t REPLICA IDENTITY USING INDEX i",
			"INSERT INTO t SELECT i, i FROM generate_series(1, 20) i",
		}, "ADD PRIMARY KEY USING INDEX i"},
		{"a constraint re-created under the original's index name", []string{
			"CREATE TABLE t (id int PRIMARY KEY, c int)",
			"INSERT INTO t SELECT i, i FROM generate_series(1, 20) i",
		}, "DROP CONSTRAINT t_pkey, ADD CONSTRAINT t_pkey PRIMARY KEY (id) INCLUDE (c)"},
		{"constraint states", []string{
			"CREATE TABLE p (id int PRIMARY KEY)",
			"INSERT INTO p VALUES (1)",
			"CREATE TABLE t (id int PRIMARY KEY, r int, s int, c int, b int)",
			"INSERT INTO t SELECT i, 1, 5, -i, i FROM generate_series(1, 20) i",
			"ALTER TABLE t ADD CONSTRAINT fk0 FOREIGN KEY (r) REFERENCES p NOT VALID, ADD CONSTRAINT cc CHECK (c < 0) NOT VALID, ADD CONSTRAINT cb CHECK (b < 0) NOT VALID",
		}, "ADD FOREIGN KEY (s) REFERENCES {s}.p NOT VALID, ADD CHECK (b > 10) NOT VALID; VALIDATE CONSTRAINT fk0; VALIDATE CONSTRAINT cc"},
		{"properties LIKE does not copy", []string{
			"CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, c int)",
			"CREATE UNIQUE INDEX ui ON t (id, a)",
			"ALTER TABLE t REPLICA IDENTITY USING INDEX ui",
			"ALTER TABLE t ALTER COLUMN c SET (n_distinct = 5), ALTER COLUMN a SET STATISTICS 300",
			"CLUSTER t USING ui",
			"COMMENT ON CONSTRAINT t_pkey ON t IS 'the key'",
			"CREATE INDEX ie ON t ((c + 1))",
			"ALTER INDEX ie ALTER COLUMN 1 SET STATISTICS 500",
			"INSERT INTO t SELECT i, i, i FROM generate_series(1, 20) i",
		}, "ADD COLUMN z int, ALTER COLUMN a TYPE bigint"},
		{"identity sequences", []string{
			"CREATE TABLE t (id int PRIMARY KEY, a smallint GENERATED ALWAYS AS IDENTITY, b int GENERATED ALWAYS AS IDENTITY, c int)",
			"INSERT INTO t (id, c) SELECT i, i FROM generate_series(1, 20) i",
		}, "ALTER COLUMN a TYPE int, ALTER COLUMN b SET GENERATED BY DEFAULT SET INCREMENT BY 2 SET START WITH 100 RESTART"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := pgTestPool(t, c.setup...)
			testdb.ResetPostgresSchema(t, pool, pgPlainSchema)
			testdb.ExecPostgresIn(t, pool, pgPlainSchema, c.setup...)
			for _, clause := range table.SplitPostgresAlter(strings.ReplaceAll(c.alter, "{s}", pgPlainSchema)) {
				testdb.ExecPostgresIn(t, pool, pgPlainSchema, "ALTER TABLE t "+clause)
			}

			sh := pgTestShadow(t, pool, "t", strings.ReplaceAll(c.alter, "{s}", pgTestSchema))
			err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{LockTimeout: 2 * time.Second, Retries: 3, ForeignKeys: sh.ForeignKeys,
				Checks: sh.Checks, Renames: sh.Renames, RestartedIdentity: sh.RestartedIdentity}, nil, func(context.Context) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			plain, osc := pgCatalogFacts(t, pool, pgPlainSchema), pgCatalogFacts(t, pool, pgTestSchema)
			for _, f := range plain {
				if !slices.Contains(osc, f) {
					t.Errorf("plain ALTER: %s", f)
				}
			}
			for _, f := range osc {
				if !slices.Contains(plain, f) {
					t.Errorf("osc:         %s", f)
				}
			}
		})
	}
}
