package table

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

const pgTestSchema = "pgplan_test"

// pgTestPool connects to the sandbox and creates a fresh test schema with the
// given statements run in it, dropped when the test ends.
func pgTestPool(t *testing.T, stmts ...string) *pgxpool.Pool {
	t.Helper()
	pool := testdb.Connect(t, "PostgreSQL", func(ctx context.Context) (*pgxpool.Pool, error) {
		return OpenPostgres(ctx, testdb.PostgresDSN())
	})
	t.Cleanup(pool.Close)
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	testdb.ExecPostgresIn(t, pool, pgTestSchema, append([]string{"SET search_path = " + pgTestSchema}, stmts...)...)
	return pool
}

func pgTestExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", pgTestSchema+"."+name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func pgQueryOne[T any](t *testing.T, pool *pgxpool.Pool, sql string) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestPostgresServerCheck(t *testing.T) {
	ok := PostgresServer{Version: 150000, WalLevel: "logical", MaxReplicationSlots: 10, ReplicationSlots: 2,
		MaxWalSenders: 10, WalSenders: 1, User: "osc", Replication: true, Database: "app", CreateOnDatabase: true}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	super := ok
	super.Replication, super.Superuser = false, true
	if err := super.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*PostgresServer)
		want string
	}{
		{func(s *PostgresServer) { s.WalLevel = "replica" }, "set wal_level = logical in postgresql.conf and restart"},
		{func(s *PostgresServer) { s.ReplicationSlots = 10 }, "no free replication slot"},
		{func(s *PostgresServer) { s.WalSenders = 10 }, "raise max_wal_senders"},
		{func(s *PostgresServer) { s.Replication = false }, `ALTER ROLE "osc" REPLICATION`},
		{func(s *PostgresServer) { s.Version = 130000 }, "PostgreSQL 14 or later"},
		{func(s *PostgresServer) { s.CreateOnDatabase = false }, `GRANT CREATE ON DATABASE "app" TO "osc"`},
	} {
		s := ok
		c.mod(&s)
		wantErr(t, s.Check(), c.want)
	}
}

func TestPostgresNames(t *testing.T) {
	n := NewPostgresNames("public", "orders")
	if n.Shadow != "_orders_osc" || n.Old != "_orders_old" || n.Checkpoint != "_orders_osk" || n.Slot != "" || n.Publication != "" {
		t.Errorf("names %+v", n)
	}
	simple := regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	capture := func(db, schema, name string) string {
		t.Helper()
		n := NewPostgresNames(schema, name).InDatabase(db)
		if n.Slot != n.Publication || n.Database != db || !simple.MatchString(n.Slot) {
			t.Errorf("names of %s.%s in %s: %+v", schema, name, db, n)
		}
		return n.Slot
	}
	hashed := regexp.MustCompile(`^osc_orders_[0-9a-f]{8}$`)
	if s := capture("shop", "public", "orders"); !hashed.MatchString(s) {
		t.Errorf("slot %q", s)
	}
	if s := capture("shop", "sales", "orders"); !strings.HasPrefix(s, "osc_sales_orders_") {
		t.Errorf("slot %q", s)
	}
	// Slot names are cluster-wide: the same table in two databases, names
	// that read alike (case, schema_table) and long names all differ.
	seen := map[string]string{}
	long := strings.Repeat("é", 40) // 80 bytes
	for _, c := range [][3]string{
		{"shop", "public", "orders"}, {"staging", "public", "orders"}, {"shop", "public", "Orders"},
		{"shop", "public", "a_b"}, {"shop", "a", "b"}, {"shop", strings.Repeat("s", 70), long}, {"shop", strings.Repeat("s", 70), long + "x"},
	} {
		s := capture(c[0], c[1], c[2])
		if prev, ok := seen[s]; ok {
			t.Errorf("%v and %s have the same slot name %s", c, prev, s)
		}
		seen[s] = fmt.Sprint(c)
	}
	ln := NewPostgresNames(strings.Repeat("s", 70), long)
	for _, name := range []string{ln.Shadow, ln.Old} {
		if len(name) > 63 || !utf8Valid(name) {
			t.Errorf("name %q: %d bytes", name, len(name))
		}
	}
	if !strings.HasSuffix(ln.Shadow, "_osc") || !strings.HasSuffix(ln.Old, "_old") {
		t.Errorf("long names %+v", ln)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestSplitPostgresAlter(t *testing.T) {
	for in, want := range map[string][]string{
		"ADD COLUMN a int": {"ADD COLUMN a int"},
		"RENAME COLUMN a TO b; ADD COLUMN c text DEFAULT 'x;y' ;  ": {"RENAME COLUMN a TO b", "ADD COLUMN c text DEFAULT 'x;y'"},
		`ADD COLUMN "we;ird" int; DROP COLUMN d`:                    {`ADD COLUMN "we;ird" int`, "DROP COLUMN d"},
		"ADD COLUMN e text DEFAULT $q$a;'b$q$; DROP COLUMN f":       {"ADD COLUMN e text DEFAULT $q$a;'b$q$", "DROP COLUMN f"},
		"ADD COLUMN g text DEFAULT 'it''s;'; DROP COLUMN h":         {"ADD COLUMN g text DEFAULT 'it''s;'", "DROP COLUMN h"},
		" ; ;": nil,
		"ADD COLUMN i int -- a comment; still\n; /* one; more */ DROP COLUMN j; -- done": {"ADD COLUMN i int -- a comment; still", "/* one; more */ DROP COLUMN j"},
		`ADD COLUMN k text DEFAULT E'\';'; DROP COLUMN l`:                                {`ADD COLUMN k text DEFAULT E'\';'`, "DROP COLUMN l"},
	} {
		got := SplitPostgresAlter(in)
		if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
			t.Errorf("SplitPostgresAlter(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPgEqualityKept(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "integer", true},
		{"integer", "bigint", true},
		{"bigint", "integer", false},
		{"character varying(10)", "text", true},
		{"text", "character varying(5)", true},
		{"numeric(10,2)", "numeric(12,2)", true},
		{"numeric(10,2)", "numeric(10,0)", false},
		{"numeric(10,2)", "numeric", true},
		{"text", "citext", false},
		{"timestamp without time zone", "date", false},
	} {
		if got := PostgresEqualityKept(c.from, c.to); got != c.want {
			t.Errorf("PostgresEqualityKept(%q, %q) = %v", c.from, c.to, got)
		}
	}
}

func TestPgFactsProblems(t *testing.T) {
	n := NewPostgresNames("s", "t").InDatabase("db")
	ok := pgTableFacts{Exists: true, Kind: "r", Persistence: "p", Owns: true, HasKey: true, HasPrimary: true, ReplIdent: "d"}
	if p := ok.problems(n); len(p) != 0 {
		t.Fatalf("problems of a good table: %q", p)
	}
	for _, c := range []struct {
		mod  func(*pgTableFacts)
		want string
	}{
		{func(f *pgTableFacts) { f.Exists = false }, "does not exist"},
		{func(f *pgTableFacts) {
			f.Kind, f.Children, f.Partitioning = "p", 2, &pgPartitioning{Problems: []string{"partition p1 is a foreign table"}}
		}, "s.t is a partitioned table and partition p1 is a foreign table"},
		{func(f *pgTableFacts) { f.Kind = "v" }, "not an ordinary table"},
		{func(f *pgTableFacts) { f.Persistence = "u" }, "SET LOGGED"},
		{func(f *pgTableFacts) { f.Owns, f.Owner = false, "bob" }, "owned by bob"},
		{func(f *pgTableFacts) { f.Children = 1 }, "inheritance"},
		{func(f *pgTableFacts) { f.OfType = "trow" }, `typed table (OF trow), which osc's new table would not be: ALTER TABLE "s"."t" NOT OF first`},
		{func(f *pgTableFacts) { f.HasKey = false }, "add a PRIMARY KEY"},
		{func(f *pgTableFacts) { f.HasPrimary = false }, "REPLICA IDENTITY USING INDEX"},
		{func(f *pgTableFacts) { f.ReplIdent = "n" }, "carries no key (NOTHING)"},
		{func(f *pgTableFacts) { f.AllTablesPubs = []string{"everything"} }, `DROP PUBLICATION "everything"`},
		{func(f *pgTableFacts) { f.SchemaPubs = []string{"sp"} }, "DROP TABLES IN SCHEMA"},
		{func(f *pgTableFacts) { f.TablePubs = []string{"tp"} }, `ALTER PUBLICATION "tp" DROP TABLE "s"."t"`},
		{func(f *pgTableFacts) {
			f.TablePubs, f.TablePubsReAdd = []string{"tp"}, []string{"ALTER PUBLICATION tp ADD TABLE s.t (id) WHERE ((id > 0))"}
		}, "after the migration with its column list or row filter: ALTER PUBLICATION tp ADD TABLE s.t (id) WHERE ((id > 0))"},
		{func(f *pgTableFacts) { f.LeftoverPub = true }, "left publication " + n.Publication + ": it saved no checkpoint, so it cannot be resumed; run again with --initially-drop-ghost-table"},
		{func(f *pgTableFacts) { f.LeftoverSlot = true }, "SELECT pg_drop_replication_slot('" + n.Slot + "')"},
		{func(f *pgTableFacts) { f.LeftoverSlot, f.LeftoverSlotPID = true, 42 }, "pg_terminate_backend(42)"},
		{func(f *pgTableFacts) { f.LeftoverSlot, f.LeftoverSlotRetained = true, 3<<20 }, "retains WAL until dropped, 3.0 MB now"},
		{func(f *pgTableFacts) { f.LeftoverShadow = true }, "left shadow table s._t_osc: it saved no checkpoint"},
		{func(f *pgTableFacts) { f.LeftoverShadow, f.LeftoverCheckpoint, f.CheckpointSaved = true, true, "T0" }, "left shadow table s._t_osc, checkpoint table s._t_osk: " +
			"run again with --resume to continue it (checkpoint saved T0), or with --initially-drop-ghost-table to drop it and start afresh"},
		{func(f *pgTableFacts) { f.LeftoverOld, f.LeftoverCheckpoint, f.CheckpointSaved = true, true, "T0" }, "after it had swapped the tables (s._t_old is the old table): run again with --resume to finish it"},
		{func(f *pgTableFacts) { f.LeftoverOld = true }, `DROP TABLE "s"."_t_old"`},
		{func(f *pgTableFacts) { f.LeftoverOld, f.OldRows = true, 12 }, "(~12 rows): the old table an earlier migration of s.t kept"},
		{func(f *pgTableFacts) { f.LeftoverOld = true }, "or run with --initially-drop-old-table to drop it first"},
		{func(f *pgTableFacts) { f.RowSecurity = true }, `row level security (enabled), which osc does not carry over yet: ALTER TABLE "s"."t" DISABLE ROW LEVEL SECURITY first`},
		{func(f *pgTableFacts) { f.ForceRowSecurity = true }, `row level security (forced), which osc does not carry over yet: ALTER TABLE "s"."t" NO FORCE ROW LEVEL SECURITY first`},
		{func(f *pgTableFacts) { f.Policies = []string{"pol"} }, "row level security (policies pol), which osc does not carry over yet: drop the policies first"},
		{func(f *pgTableFacts) {
			f.RowSecurity, f.ForceRowSecurity, f.Policies = true, true, []string{"p1", "p2"}
		},
			`row level security (enabled, forced, policies p1, p2), which osc does not carry over yet: ALTER TABLE "s"."t" DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY and drop the policies first`},
		{func(f *pgTableFacts) { f.Rules = []string{"r"} }, "rules (r)"},
		{func(f *pgTableFacts) { f.MatViews = []string{"mv"} }, "materialized views"},
		{func(f *pgTableFacts) { f.OtherRules = []string{"r on v"} }, "r on v"},
		{func(f *pgTableFacts) { f.ForeignViews = []string{"v (owner bob)"} }, "must own them"},
		{func(f *pgTableFacts) { f.RowTypeUsers = []string{"function f(t)"} }, "row type"},
		{func(f *pgTableFacts) { f.Subscriptions = []string{"sub"} }, "table of subscription sub, whose apply worker would skip"},
		{func(f *pgTableFacts) { f.Grantors = []string{"alice (osc's user is not a member of it)"} }, "granted by alice (osc's user is not a member of it), through a grant option"},
		{func(f *pgTableFacts) { f.Functions = []string{"f()"} }, "BEGIN ATOMIC"},
		{func(f *pgTableFacts) { f.BoundElsewhere = []string{"trigger x on table o"} }, "objects bound to s.t or to its identity sequences by oid (trigger x on table o) would stay on the old table"},
		{func(f *pgTableFacts) { f.OtherSchema = []string{"x.st"} }, `extended statistics in another schema (x.st), which osc's new table would have in its own schema: ALTER STATISTICS … SET SCHEMA "s" first`},
		{func(f *pgTableFacts) { f.SelfForeignKeys = []string{"fk"} }, "self-referencing"},
		{func(f *pgTableFacts) { f.PartitionedFKs = []string{"fk on p"} }, "partitioned tables reference"},
		{func(f *pgTableFacts) { f.ForeignChildren = []string{"fk on c (owner bob)"} }, "must own those tables"},
	} {
		f := ok
		c.mod(&f)
		p := f.problems(n)
		if len(p) != 1 || !strings.Contains(p[0], c.want) {
			t.Errorf("problems %q, want one containing %q", p, c.want)
		}
	}
	// A partitioned table's partitions are no inheritance; a killed run
	// of its migration is resumed as any other (Resume checks its
	// partitions).
	f := ok
	f.Kind, f.Children, f.Partitioning = "p", 3, &pgPartitioning{}
	if p := f.problems(n); len(p) != 0 {
		t.Errorf("problems of a good partitioned table: %q", p)
	}
	f.LeftoverShadow, f.LeftoverCheckpoint, f.CheckpointSaved = true, true, "T0"
	if p := f.problems(n); len(p) != 1 || !strings.Contains(p[0], "run again with --resume to continue it") {
		t.Errorf("problems of a partitioned table's killed run: %q", p)
	}
	// Resuming, what the killed run left is no refusal.
	f = ok
	f.LeftoverPub, f.LeftoverSlot, f.LeftoverShadow, f.LeftoverOld, f.LeftoverCheckpoint, f.Resume = true, true, true, true, true, true
	if p := f.problems(n); len(p) != 0 {
		t.Errorf("problems when resuming: %q", p)
	}
}

func TestPgCheckNewUnique(t *testing.T) {
	src := []pgIndex{
		{Name: "t_pkey", Primary: true, Unique: true, Immediate: true, Valid: true, Columns: []string{"id"}, Method: "btree"},
		{Name: "t_a_key", Unique: true, Immediate: true, Valid: true, Columns: []string{"a"}, Method: "btree"},
		{Name: "t_lower", Unique: true, Immediate: true, Valid: true, Columns: []string{""}, Exprs: "lower(b)", Method: "btree"},
		{Name: "t_broken", Unique: true, Immediate: true, Valid: false, Columns: []string{"c"}, Method: "btree"},
	}
	toSource := map[string]string{"id": "id", "a2": "a", "b": "b", "c": "c"}
	safe := func(string) bool { return true }
	ok := [][]pgIndex{
		{src[0]},
		{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"a2"}, Method: "btree"}},      // renamed column
		{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"a2", "b"}, Method: "btree"}}, // superset
		{{Name: "x", Unique: true, Valid: true, Columns: []string{"id"}, Pred: "b > ''", Method: "btree"}},       // partial of a key
		{src[2]},
	}
	unchanged := func(c string) bool { return c != "new" }
	for _, sh := range ok {
		if nu, err := pgCheckNewUnique(src, sh, toSource, safe, unchanged); err != nil || len(nu) != 0 {
			t.Errorf("%v: %v %v", sh, nu, err)
		}
	}
	// New unique keys: plain, immediate UNIQUE over unchanged columns.
	for _, c := range []struct {
		ix   pgIndex
		want UniqueKey
	}{
		{pgIndex{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"b"}, Method: "btree"},
			UniqueKey{Name: "x", Columns: []string{"b"}, Shadow: []string{"b"}}},
		{pgIndex{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"b", "c"}, Method: "btree"},
			UniqueKey{Name: "x", Columns: []string{"b", "c"}, Shadow: []string{"b", "c"}}},
		// The original's is invalid: the shadow's is new.
		{pgIndex{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"c"}, Include: []string{"new"}, Method: "btree"},
			UniqueKey{Name: "x", Columns: []string{"c"}, Shadow: []string{"c"}}},
	} {
		nu, err := pgCheckNewUnique(src, []pgIndex{c.ix}, toSource, safe, unchanged)
		if err != nil || len(nu) != 1 || fmt.Sprint(nu[0]) != fmt.Sprint(c.want) {
			t.Errorf("%v: %+v %v, want %+v", c.ix, nu, err, c.want)
		}
	}
	bad := [][]pgIndex{
		{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"new"}, Method: "btree"}},               // new column
		{{Name: "x", Unique: true, Valid: true, Columns: []string{"b"}, Method: "btree"}},                                  // deferrable
		{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"b"}, Pred: "a2 > 0", Method: "btree"}}, // partial
		{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{""}, Exprs: "upper(b)", Method: "btree"}},
		{{Name: "x", Primary: true, Unique: true, Immediate: true, Valid: true, Columns: []string{"b"}, Method: "btree"}},
		{{Name: "x", Exclusion: true, Valid: true, Columns: []string{"b"}, Method: "gist", ConstraintDef: "EXCLUDE"}}, // exclusion
	}
	for _, sh := range bad {
		_, err := pgCheckNewUnique(src, sh, toSource, safe, unchanged)
		wantErr(t, err, "which the original does not guarantee")
	}
	_, err := pgCheckNewUnique(src, []pgIndex{{Name: "x", Unique: true, Immediate: true, Valid: true, Columns: []string{"b"}, NullsNot: true, Method: "btree"}},
		toSource, safe, unchanged)
	wantErr(t, err, "only with NULLs distinct")
	never := func(string) bool { return false }
	_, err = pgCheckNewUnique(src, []pgIndex{src[1]}, map[string]string{"a": "a"}, never, never)
	wantErr(t, err, "whose type, collation or values (USING) it changes")
}

func pgInspect(t *testing.T, q PostgresQuerier, name string) (*PostgresInspection, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return InspectPostgresTable(ctx, q, NewPostgresNames(pgTestSchema, name).InDatabase(testdb.PostgresConfig(t).ConnConfig.Database))
}

func TestInspectPostgresRefusals(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE good (id bigserial PRIMARY KEY, a int, b text)",
		"CREATE TABLE nokey (a int, b text)",
		"CREATE TABLE nullkey (a int UNIQUE, b text)",
		"CREATE TABLE partkey (a int NOT NULL, b text)",
		"CREATE UNIQUE INDEX ON partkey (a) WHERE b IS NOT NULL",
		"CREATE TABLE defkey (a int PRIMARY KEY DEFERRABLE, b text)",
		"CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id)",
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"CREATE TABLE child (x int) INHERITS (parent)",
		"CREATE TABLE trig (id int PRIMARY KEY)",
		"CREATE TRIGGER trig_t BEFORE UPDATE ON trig FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
		"CREATE TABLE mv_src (id int PRIMARY KEY)",
		"CREATE MATERIALIZED VIEW mv AS SELECT id FROM mv_src",
		"CREATE TABLE left1 (id int PRIMARY KEY)",
		"CREATE TABLE _left1_osc (id int)",
		"CREATE UNLOGGED TABLE unl (id int PRIMARY KEY)",
		"CREATE TABLE selfref (id int PRIMARY KEY, parent_id int REFERENCES selfref)",
		"CREATE TABLE rowtype (id int PRIMARY KEY)",
		"CREATE VIEW rowtype_v AS SELECT r FROM rowtype r",
		"CREATE TABLE granted (id int PRIMARY KEY, a int)",
		"GRANT USAGE ON SCHEMA pgplan_test TO pg_monitor",
		"GRANT SELECT, UPDATE (a) ON granted TO pg_monitor WITH GRANT OPTION",
		"SET ROLE pg_monitor",
		"GRANT UPDATE (a) ON granted TO pg_read_all_stats",
		"RESET ROLE",
		"REVOKE USAGE ON SCHEMA pgplan_test FROM pg_monitor",
		"CREATE TABLE rowarr (id int PRIMARY KEY)",
		"CREATE FUNCTION rowarr_n(x rowarr[]) RETURNS int LANGUAGE sql AS 'SELECT cardinality(x)'",
		"CREATE TABLE rowarr_col (id int PRIMARY KEY)",
		"CREATE TABLE rowarr_holder (id int PRIMARY KEY, xs rowarr_col[])",
		"CREATE TABLE fn_t (id int PRIMARY KEY)",
		"CREATE FUNCTION fn_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM fn_t; END",
		"CREATE TABLE pol (id int PRIMARY KEY)",
		"ALTER TABLE pol ENABLE ROW LEVEL SECURITY",
		"CREATE TABLE ruled (id int PRIMARY KEY)",
		"CREATE TABLE uniq (id int NOT NULL UNIQUE)",
		"CREATE TABLE uniq_ri (id int NOT NULL UNIQUE)",
		"ALTER TABLE uniq_ri REPLICA IDENTITY USING INDEX uniq_ri_id_key",
		"CREATE RULE ruled_r AS ON DELETE TO ruled DO INSTEAD NOTHING",
	)
	if _, err := pgInspect(t, pool, "uniq_ri"); err != nil {
		t.Errorf("a unique key as replica identity: %v", err)
	}
	in, err := pgInspect(t, pool, "good")
	if err != nil {
		t.Fatal(err)
	}
	if in.Source.Name != "good" || len(in.Source.Columns) != 3 || in.Source.Columns[1].ColumnType != "integer" || in.EstimatedRows != 0 {
		t.Errorf("inspection %+v, source %+v", in, in.Source)
	}
	for name, want := range map[string]string{
		"missing":    "does not exist",
		"nokey":      "no PRIMARY KEY",
		"nullkey":    "no PRIMARY KEY or UNIQUE index osc can use (valid, not deferrable, not partial, no expression, all columns NOT NULL): unique index nullkey_a_key (a) column a allows NULL;",
		"partkey":    "unique index partkey_a_idx (a) WHERE (b IS NOT NULL) is partial;",
		"defkey":     "primary key defkey_pkey (a) is DEFERRABLE (ON CONFLICT cannot use it);",
		"parted":     "partitioned",
		"parent":     "inheritance",
		"child":      "inheritance",
		"mv_src":     "materialized views",
		"left1":      "left shadow table pgplan_test._left1_osc",
		"unl":        "SET LOGGED",
		"selfref":    "self-referencing",
		"rowtype":    "column r of view",
		"rowarr":     "function pgplan_test.rowarr_n(pgplan_test.rowarr[])",
		"granted":    "privileges on pgplan_test.granted were granted by pg_monitor (it has no USAGE on the schema), through a grant option",
		"rowarr_col": "column xs of table pgplan_test.rowarr_holder",
		"fn_t":       "functions pgplan_test.fn_count() have bodies bound",
		"pol":        "row level security",
		"ruled":      "rules (ruled_r)",
		"uniq":       "REPLICA IDENTITY USING INDEX",
		"_left1_o":   "does not exist",
	} {
		_, err := pgInspect(t, pool, name)
		if err == nil {
			t.Errorf("%s: no refusal, want %q", name, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: refusal %q does not contain %q", name, err, want)
		}
	}
}

// A FOR ALL TABLES publication is created, inspected and rolled back in one
// transaction: nobody else ever sees it.
func TestInspectPostgresAllTablesPublication(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE good (id int PRIMARY KEY)")
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "CREATE PUBLICATION pgplan_test_all FOR ALL TABLES"); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, tx, "good")
	wantErr(t, err, "pgplan_test_all is FOR ALL TABLES", `DROP PUBLICATION "pgplan_test_all"`)
	if _, err := tx.Exec(ctx, "DROP PUBLICATION pgplan_test_all"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "CREATE PUBLICATION pgplan_test_one FOR TABLE "+pgTestSchema+".good"); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, tx, "good")
	wantErr(t, err, "is in publication pgplan_test_one")
	if strings.Contains(err.Error(), "column list") {
		t.Errorf("a publication of every column and row named as one with a column list or row filter: %v", err)
	}
	// A column list and a row filter are named with the statement that
	// adds the table back with them.
	if _, err := tx.Exec(ctx, `CREATE TABLE `+pgTestSchema+`.filtered (id int PRIMARY KEY, a int, "B c" text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `CREATE PUBLICATION pgplan_test_some FOR TABLE `+pgTestSchema+`.filtered (id, "B c") WHERE (id > 0 AND a IS NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, tx, "filtered")
	wantErr(t, err, "is in publication pgplan_test_some", `add the table back after the migration with its column list or row filter: `+
		`ALTER PUBLICATION pgplan_test_some ADD TABLE `+pgTestSchema+`.filtered (id, "B c") WHERE (((id > 0) AND (a IS NOT NULL)))`)
}

func TestInspectPostgresLeftoverSlot(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE slotted (id int PRIMARY KEY)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := NewPostgresNames(pgTestSchema, "slotted").InDatabase(testdb.PostgresConfig(t).ConnConfig.Database)
	// A temporary slot dies with its session.
	conn, err := pgx.Connect(ctx, testdb.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput', true)", n.Slot); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, pool, "slotted")
	wantErr(t, err, "a killed osc run of this migration left replication slot "+n.Slot, "pg_terminate_backend(", "pg_drop_replication_slot('"+n.Slot+"')",
		"it saved no checkpoint", "--initially-drop-ghost-table")
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", n.Slot); err != nil {
		t.Fatal(err)
	}
}

// TestInspectPostgresLeftoverAside: a table of rows set aside that a run
// left (its drop failed at cleanup, after which the shadow's succeeded) is
// named with the way out, not met later as "relation already exists" when
// a new unique key's run creates its own.
func TestInspectPostgresLeftoverAside(t *testing.T) {
	pool := pgTestPool(t, "CREATE TABLE asided (id int PRIMARY KEY, email text)", "CREATE TABLE _asided_osd (id int PRIMARY KEY, email text)")
	_, err := pgInspect(t, pool, "asided")
	wantErr(t, err, "a killed osc run of this migration left table of rows set aside "+pgTestSchema+"._asided_osd", "--initially-drop-ghost-table")
}

func TestLockPostgres(t *testing.T) {
	pool := pgTestPool(t)
	ctx := context.Background()
	l, err := LockPostgres(ctx, pool, pgTestSchema, "locked")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockPostgres(ctx, pool, pgTestSchema, "locked")
	wantErr(t, err, "another osc is migrating pgplan_test.locked")
	other, err := LockPostgres(ctx, pool, pgTestSchema, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = LockPostgres(ctx, pool, pgTestSchema, "locked")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	// A holder that goes away within the wait (a killed run's session the
	// server has not ended yet) does not refuse the next run.
	released := make(chan error, 1)
	time.AfterFunc(time.Second, func() { released <- l.Release(ctx) })
	l, err = LockPostgres(ctx, pool, pgTestSchema, "locked")
	if rerr := <-released; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("lock released while waiting: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func pgShadow(t *testing.T, pool *pgxpool.Pool, name, alter string) (*PostgresShadow, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := pgInspect(t, pool, name)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := CreatePostgresShadow(ctx, pool, in, alter, time.Second)
	if err == nil {
		t.Cleanup(func() {
			if err := DropPostgresTable(context.Background(), pool, pgTestSchema, in.Names.Shadow); err != nil {
				t.Error(err)
			}
		})
	} else if pgTestExists(t, pool, in.Names.Shadow) {
		t.Errorf("a refused shadow %s was left behind", in.Names.Shadow)
	}
	return sh, err
}

func TestCreatePostgresShadowPlan(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE parent (id int PRIMARY KEY)",
		// gone is dropped first so that the original's attnums have a hole
		// the shadow's do not.
		"CREATE TABLE plan_t (id bigserial PRIMARY KEY, gone int, a int, b text, c text, g bigint GENERATED ALWAYS AS (id * 2) STORED, "+
			"p int REFERENCES parent ON DELETE CASCADE, d numeric(10,2) DEFAULT 1.5)",
		"ALTER TABLE plan_t DROP COLUMN gone",
		"CREATE INDEX plan_t_c ON plan_t (c)",
		"ALTER TABLE plan_t SET (fillfactor = 90, toast.autovacuum_enabled = false)",
		"COMMENT ON COLUMN plan_t.c IS 'the c'",
	)
	sh, err := pgShadow(t, pool, "plan_t", "ADD COLUMN e int DEFAULT 0; DROP COLUMN b; RENAME COLUMN c TO c2; ALTER COLUMN a TYPE bigint")
	if err != nil {
		t.Fatal(err)
	}
	p := sh.Plan
	if got := fmt.Sprint(p.Mapping); got != "[{id id 0  []} {a a 1  []} {c c2 3  []} {p p 5  []} {d d 6  []}]" {
		t.Errorf("mapping %s", got)
	}
	if fmt.Sprint(p.Key, p.KeyIndex) != "[id] [0]" || p.OldName != "_plan_t_old" || p.Shadow.Name != "_plan_t_osc" || p.Shadow.Schema != pgTestSchema {
		t.Errorf("plan %+v", p)
	}
	if c := p.Source.Columns[4]; c.Name != "g" || !c.Generated {
		t.Errorf("generated column %+v", c)
	}
	if c := p.Shadow.Columns[p.Shadow.ColumnIndex("a")]; c.ColumnType != "bigint" || c.DataType != "bigint" {
		t.Errorf("shadow column a %+v", c)
	}
	if c := p.Source.Columns[6]; c.ColumnType != "numeric(10,2)" || c.DataType != "numeric" || !c.Nullable {
		t.Errorf("source column d %+v", c)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"drop column b (its data will be lost)", "rename column c -> c2", "add column e integer",
		"change column a: integer -> bigint", "key: primary key plan_t_pkey (id)", "rows: ~0", "foreign key plan_t_p_fkey added to the new table at cut-over", "LOCK TABLE"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if len(sh.ForeignKeys) != 1 || sh.ForeignKeys[0].Definition != "FOREIGN KEY (p) REFERENCES pgplan_test.parent(id) ON DELETE CASCADE" ||
		!sh.ForeignKeys[0].Validate || sh.ForeignKeys[0].References != "pgplan_test.parent" {
		t.Errorf("foreign keys %+v", sh.ForeignKeys)
	}
	var fks int
	var opts []string
	var comment string
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid AND contype = 'f'),
		c.reloptions, col_description(c.oid, (SELECT attnum FROM pg_attribute WHERE attrelid = c.oid AND attname = 'c2'))
		FROM pg_class c WHERE c.oid = 'pgplan_test._plan_t_osc'::regclass`).Scan(&fks, &opts, &comment); err != nil {
		t.Fatal(err)
	}
	toast := pgQueryOne[[]string](t, pool, "SELECT reloptions FROM pg_class WHERE oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'pgplan_test._plan_t_osc'::regclass)")
	if fks != 0 || fmt.Sprint(opts) != "[fillfactor=90]" || fmt.Sprint(toast) != "[autovacuum_enabled=false]" || comment != "the c" {
		t.Errorf("shadow: %d foreign keys (want them set aside), options %v, comment %q", fks, opts, comment)
	}
}

func TestCreatePostgresShadowRefusals(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE r (id int PRIMARY KEY, a int, b text, u int UNIQUE)",
		"CREATE VIEW r_v AS SELECT b, a FROM r",
		"CREATE TABLE r_child (id int PRIMARY KEY, rid int REFERENCES r (id))",
		"CREATE TABLE ri (id int PRIMARY KEY, a int NOT NULL, b int)",
		"CREATE UNIQUE INDEX ri_a ON ri (a)",
		"ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_a",
		"CREATE UNIQUE INDEX ri_b ON ri (b)",
	)
	for alter, want := range map[string]string{
		"ADD COLUMN x nosuchtype":                        "the --alter fails",
		"ADD COLUMN x int; SELECT 1":                     "the --alter fails",
		"ADD CONSTRAINT r_a_key UNIQUE (a) DEFERRABLE":   "ON CONFLICT DO NOTHING",
		"ALTER COLUMN u TYPE smallint":                   "ON CONFLICT DO NOTHING",
		"ADD COLUMN z int NOT NULL":                      "NOT NULL without a default",
		"RENAME TO r2":                                   "renames the table",
		"SET SCHEMA public":                              "another schema",
		"DROP COLUMN b":                                  "view pgplan_test.r_v reads column b, which the --alter drops",
		"RENAME COLUMN b TO b2":                          "renames to b2",
		"ALTER COLUMN b TYPE varchar(10)":                "whose type the --alter changes",
		"RENAME COLUMN id TO id2":                        "foreign key r_child_rid_fkey on pgplan_test.r_child references column id",
		"DROP CONSTRAINT r_pkey":                         "no key is usable in both tables",
		"ADD COLUMN s int REFERENCES pgplan_test._r_osc": "self-referencing",
		// The table's own name, as a plain ALTER reads it (on the shadow it
		// would name the original).
		"ADD COLUMN s int REFERENCES r": "self-referencing foreign key r_s_fkey",
		// Refused with the user's names, not the shadow's.
		"ADD UNIQUE (a) DEFERRABLE": "unique index r_a_key (a)",
		// The original's constraint name is mapped to the shadow's; the drop then reaches the checks.
		"DROP CONSTRAINT r_u_key; ALTER COLUMN a TYPE text":                                  "view pgplan_test.r_v reads column a, whose type",
		"ADD COLUMN q int GENERATED ALWAYS AS (a + 1) STORED; ADD CONSTRAINT q_u UNIQUE (q)": "ON CONFLICT DO NOTHING",
	} {
		_, err := pgShadow(t, pool, "r", alter)
		if err == nil {
			t.Errorf("%s: no refusal, want %q", alter, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: refusal %q does not contain %q", alter, err, want)
		}
	}
	// The shadow has the original's replica identity when the --alter runs:
	// the server refuses what it refuses on the original.
	_, err := pgShadow(t, pool, "ri", "ALTER COLUMN a DROP NOT NULL")
	if err == nil || !strings.Contains(err.Error(), `column "a" is in index used as replica identity`) {
		t.Errorf("replica identity: %v", err)
	}
	// The replica identity carries the key osc chooses, or the plan refuses:
	// with a dropped, the key is the primary key.
	_, err = pgShadow(t, pool, "ri", "DROP COLUMN a")
	if err == nil || !strings.Contains(err.Error(), `replica identity of pgplan_test.ri is USING INDEX ri_a (a), which lacks columns of the key osc copies and applies rows by, primary key ri_pkey (id): `+
		`logical replication would not say which row an UPDATE or DELETE changed; ALTER TABLE "pgplan_test"."ri" REPLICA IDENTITY DEFAULT (or FULL) first`) {
		t.Errorf("replica identity: %v", err)
	}
	sh, err := pgShadow(t, pool, "ri", "ALTER COLUMN b TYPE bigint")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(sh.Plan.Notes, "\n"), "key: unique index ri_a (a)") {
		t.Errorf("replica identity: the key is not the one it carries: %q", sh.Plan.Notes)
	}
	// A wider key, a unique index implied by the original's, the original's
	// constraint names: fine.
	sh, err = pgShadow(t, pool, "r", `ALTER COLUMN id TYPE bigint; ADD CONSTRAINT r_u_b UNIQUE (u, b); DROP CONSTRAINT "r_pkey", ADD PRIMARY KEY (id)`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(sh.Plan.Notes, "\n"), "key: primary key r_pkey (id)") {
		t.Errorf("notes %q", sh.Plan.Notes)
	}
}

// TestPostgresUniqueCollation: a unique index over a column the --alter
// gives a nondeterministic collation (case-insensitive) is not implied by the
// original's index: 'X' and 'x' are distinct there and equal here. The plan
// refuses it, as it refuses a new unique index, rather than let the applier
// delete one of the rows as a clash (found by the clash review); a change to
// a deterministic collation keeps distinct strings distinct and is accepted.
func TestPostgresUniqueCollation(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
		`CREATE TABLE uc (id int PRIMARY KEY, email text COLLATE "C" UNIQUE, v text)`,
		"INSERT INTO uc VALUES (1, 'X', 'a'), (2, 'x', 'b')")
	if _, err := pgShadow(t, pool, "uc", "ALTER COLUMN email TYPE text COLLATE "+pgTestSchema+".ci"); err == nil ||
		!strings.Contains(err.Error(), "which the original does not guarantee") {
		t.Errorf("nondeterministic collation: %v, want a refusal", err)
	}
	if _, err := pgShadow(t, pool, "uc", `ALTER COLUMN email TYPE text COLLATE "POSIX"`); err != nil {
		t.Errorf("deterministic collation: %v", err)
	}
}

// A table that a subscription applies changes into, and a partitioned
// table one of whose partitions it applies into: the subscription names
// them by oid, so after the swap its apply worker would skip their changes.
// The subscription is created, inspected and rolled back in one
// transaction (it neither connects again nor has a slot); its publication,
// which the subscription reads over a connection of its own, is committed
// and dropped after the publication's refusal is out of the way.
func TestInspectPostgresSubscribedTable(t *testing.T) {
	pool := pgTestPool(t, append([]string{"CREATE TABLE subbed (id int PRIMARY KEY)"}, pgPartitioned("subparted")...)...)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE PUBLICATION pgplan_test_subpub FOR TABLE "+pgTestSchema+".subbed, "+pgTestSchema+".subparted_2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP PUBLICATION IF EXISTS pgplan_test_subpub"); err != nil {
			t.Error(err)
		}
	})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "CREATE SUBSCRIPTION pgplan_test_sub CONNECTION '"+testdb.PostgresDSN()+"' PUBLICATION pgplan_test_subpub "+
		"WITH (enabled = false, create_slot = false, slot_name = NONE, copy_data = false)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DROP PUBLICATION pgplan_test_subpub"); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, tx, "subbed")
	wantErr(t, err, "is a table of subscription pgplan_test_sub, whose apply worker would skip every change", "run the ALTER TABLE directly")
	_, err = pgInspect(t, tx, "subparted")
	wantErr(t, err, "partition subparted_2: subscriptions applying into it of its own")
}
