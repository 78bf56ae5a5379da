package table

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"osc/internal/testdb"
)

// pgPartitioned is a partitioned table name, RANGE on id, with two
// partitions and a DEFAULT one, and more statements (%[1]s is the name).
func pgPartitioned(name string, more ...string) []string {
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, a int, b text) PARTITION BY RANGE (id)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_1 PARTITION OF %[1]s FOR VALUES FROM (MINVALUE) TO (10)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_2 PARTITION OF %[1]s FOR VALUES FROM (10) TO (20)", name),
		fmt.Sprintf("CREATE TABLE %[1]s_d PARTITION OF %[1]s DEFAULT", name),
		fmt.Sprintf("INSERT INTO %s SELECT i, i, 'b' || i FROM generate_series(1, 30) i", name),
	}
	for _, m := range more {
		stmts = append(stmts, fmt.Sprintf(m, name))
	}
	return stmts
}

func TestInspectPostgresPartitioned(t *testing.T) {
	var setup []string
	cases := map[string]struct {
		more []string
		want string
	}{
		"pgood": {[]string{"CREATE INDEX ON %[1]s (a)", "COMMENT ON TABLE %[1]s_2 IS 'c'"}, ""},
		"psub": {[]string{"CREATE TABLE %[1]s_s PARTITION OF %[1]s FOR VALUES FROM (100) TO (200) PARTITION BY HASH (id)",
			"CREATE TABLE %[1]s_s0 PARTITION OF %[1]s_s FOR VALUES WITH (MODULUS 2, REMAINDER 0)",
			"CREATE TABLE %[1]s_s1 PARTITION OF %[1]s_s FOR VALUES WITH (MODULUS 2, REMAINDER 1)"}, ""},
		"psubidx": {[]string{"CREATE TABLE %[1]s_s PARTITION OF %[1]s FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id)",
			"CREATE TABLE %[1]s_s1 PARTITION OF %[1]s_s FOR VALUES FROM (100) TO (150)", "CREATE INDEX psubidx_local ON %[1]s_s1 (b)"},
			"partition psubidx_s1: index psubidx_local is its own"},
		"punl":     {[]string{"CREATE UNLOGGED TABLE %[1]s_u PARTITION OF %[1]s FOR VALUES FROM (100) TO (200)"}, "partition punl_u is unlogged"},
		"pidx":     {[]string{"CREATE INDEX pidx_local ON %[1]s_1 (b)"}, "partition pidx_1: index pidx_local is its own"},
		"pcheck":   {[]string{"ALTER TABLE %[1]s_2 ADD CONSTRAINT pos CHECK (a > 0)"}, "partition pcheck_2: constraint pos is its own"},
		"pgrant":   {[]string{"GRANT SELECT ON %[1]s_d TO PUBLIC"}, "partition pgrant_d: privileges granted on it of its own"},
		"pview":    {[]string{"CREATE VIEW %[1]s_v AS SELECT * FROM %[1]s_1"}, "partition pview_1: views reading it"},
		"ptrig":    {[]string{"CREATE TRIGGER t BEFORE UPDATE ON %[1]s_1 FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"}, "partition ptrig_1: trigger t is its own"},
		"pfk":      {[]string{"CREATE TABLE %[1]s_ref (a int PRIMARY KEY)", "INSERT INTO %[1]s_ref SELECT generate_series(1, 30)", "ALTER TABLE %[1]s ADD FOREIGN KEY (a) REFERENCES %[1]s_ref"}, "it has foreign keys (pfk_a_fkey)"},
		"pin":      {[]string{"CREATE TABLE %[1]s_child (id int, pid int, FOREIGN KEY (pid) REFERENCES %[1]s)"}, "foreign keys reference it (pin_child_pid_fkey on pgplan_test.pin_child)"},
		"pempty":   {[]string{"DROP TABLE %[1]s_1, %[1]s_2, %[1]s_d"}, "it has no partitions"},
		"pother":   {[]string{"CREATE TABLE %[1]s_x (b text, a int, id int NOT NULL)", "ALTER TABLE %[1]s ATTACH PARTITION %[1]s_x FOR VALUES FROM (100) TO (200)"}, "partition pother_x: its columns are not the table's, in its order (b, a, id)"},
		"preplid":  {[]string{"ALTER TABLE %[1]s_2 REPLICA IDENTITY NOTHING"}, "partition preplid_2: a replica identity that is not its primary key of its own"},
		"pstorage": {[]string{"ALTER TABLE %[1]s_2 SET (fillfactor = 50)"}, "partition pstorage_2: storage parameters of its own"},
		"prowtype": {[]string{"CREATE FUNCTION %[1]s_f(x %[1]s_1[]) RETURNS int LANGUAGE sql AS 'SELECT cardinality(x)'"},
			"partition prowtype_1: its row type is used by function pgplan_test.prowtype_f(pgplan_test.prowtype_1[]), which would stay bound to the old partition"},
	}
	for name, c := range cases {
		setup = append(setup, pgPartitioned(name, c.more...)...)
	}
	// A partition of another schema.
	setup = append(setup, pgPartitioned("pschema")...)
	setup = append(setup, "DROP SCHEMA IF EXISTS pgplan_test_other CASCADE", "CREATE SCHEMA pgplan_test_other",
		"CREATE TABLE pgplan_test_other.pschema_o PARTITION OF pschema FOR VALUES FROM (100) TO (200)")
	cases["pschema"] = struct {
		more []string
		want string
	}{nil, "partition pschema_o is in another schema"}
	pool := pgTestPool(t, setup...)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS pgplan_test_other CASCADE"); err != nil {
			t.Error(err)
		}
	})
	for name, c := range cases {
		in, err := pgInspect(t, pool, name)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			var parts []string
			for _, p := range in.Partitions {
				parts = append(parts, strings.TrimSpace(p.Name+" "+p.Bound+" "+p.Shadow+" "+p.Parent+" "+p.Key))
			}
			want := map[string]string{
				"pgood": "pgood_1 FOR VALUES FROM (MINVALUE) TO (10) _pgood_1_osc; pgood_2 FOR VALUES FROM (10) TO (20) _pgood_2_osc; pgood_d DEFAULT _pgood_d_osc",
				// Parents first; a sub-partition names its parent, a
				// partitioned partition its key.
				"psub": "psub_1 FOR VALUES FROM (MINVALUE) TO (10) _psub_1_osc; psub_2 FOR VALUES FROM (10) TO (20) _psub_2_osc; psub_d DEFAULT _psub_d_osc; " +
					"psub_s FOR VALUES FROM (100) TO (200) _psub_s_osc  HASH (id); " +
					"psub_s0 FOR VALUES WITH (modulus 2, remainder 0) _psub_s0_osc psub_s; psub_s1 FOR VALUES WITH (modulus 2, remainder 1) _psub_s1_osc psub_s",
			}[name]
			if got := strings.Join(parts, "; "); got != want || in.PartitionKey != "RANGE (id)" || in.EstimatedRows != 30 {
				t.Errorf("%s: key %q, partitions %s, rows %d", name, in.PartitionKey, got, in.EstimatedRows)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: refusal %v, want %q", name, err, c.want)
		}
	}

	// A publication listing a partition, made and rolled back in one
	// transaction (publications are the database's, not the schema's).
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "CREATE PUBLICATION pgplan_test_part FOR TABLE "+pgTestSchema+".pgood_2"); err != nil {
		t.Fatal(err)
	}
	_, err = pgInspect(t, tx, "pgood")
	wantErr(t, err, "partition pgood_2: publications listing it of its own")
}

func TestPgPartitionClause(t *testing.T) {
	for alter, want := range map[string]string{
		"ADD COLUMN c int": "",
		"ADD COLUMN attach int, ADD COLUMN partition int":     "",
		"ATTACH PARTITION x FOR VALUES IN (1)":                "ATTACH PARTITION",
		"add column c int; detach partition t_1 concurrently": "detach partition",
		"ADD COLUMN c text DEFAULT 'ATTACH PARTITION'":        "",
	} {
		if got := pgPartitionClause(SplitPostgresAlter(alter)); got != want {
			t.Errorf("%q: %q, want %q", alter, got, want)
		}
	}
}

// TestPostgresPartitionOwnerRefused: the cut-over gives each new partition
// its partition's owner, which osc's user can do only as a member of that
// role: a partition owned by another role is refused at inspection, as a
// table of another role is.
func TestPostgresPartitionOwnerRefused(t *testing.T) {
	const role, schema = "partition_owner_ro", "partition_owner"
	ctx := context.Background()
	admin := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ExecPostgres(t, admin, "DROP SCHEMA IF EXISTS "+schema+" CASCADE", "DROP ROLE IF EXISTS "+role, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { _, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role) })
	testdb.ResetPostgresSchema(t, admin, schema)
	testdb.ExecPostgres(t, admin,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY) PARTITION BY RANGE (id)",
		"CREATE TABLE "+schema+".t_1 PARTITION OF "+schema+".t FOR VALUES FROM (0) TO (10)",
		"CREATE TABLE "+schema+".t_2 PARTITION OF "+schema+".t FOR VALUES FROM (10) TO (20)",
		"ALTER TABLE "+schema+".t OWNER TO "+role, "ALTER TABLE "+schema+".t_1 OWNER TO "+role,
		"GRANT USAGE ON SCHEMA "+schema+" TO "+role)
	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.User = role
	pool := testdb.OpenPostgres(t, cfg)
	var oid uint32
	if err := pool.QueryRow(ctx, "SELECT $1::regclass::oid", schema+".t").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	p, err := pgReadPartitioning(ctx, pool, oid)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Problems, "; "); !strings.Contains(got, "partition t_2 is owned by postgres") || strings.Contains(got, "t_1") {
		t.Errorf("problems: %s", got)
	}
}

// TestPostgresPartitionTablespaces: a partition in the database's default
// tablespace under a parent in another keeps its place: PARTITION OF
// without TABLESPACE would make its shadow partition in the parent's. A
// partition that is partitioned in turn cannot be made so, and is refused.
// It needs a tablespace other than the default (testTablespace).
func TestPostgresPartitionTablespaces(t *testing.T) {
	space := testTablespace(t)
	// The root is given the tablespace once its first partitions exist:
	// they stay in the default one; one made later is in the root's.
	tree := []string{
		"CREATE TABLE ptsp (id int PRIMARY KEY, a int) PARTITION BY RANGE (id)",
		"CREATE TABLE ptsp_1 PARTITION OF ptsp FOR VALUES FROM (0) TO (10)",
		"ALTER TABLE ptsp SET TABLESPACE " + space,
		"CREATE TABLE ptsp_2 PARTITION OF ptsp FOR VALUES FROM (10) TO (20)",
		"CREATE TABLE ptsp_d PARTITION OF ptsp DEFAULT",
		"CREATE TABLE ptspsub (id int PRIMARY KEY, a int) PARTITION BY RANGE (id)",
		"CREATE TABLE ptspsub_1 PARTITION OF ptspsub FOR VALUES FROM (0) TO (10) PARTITION BY RANGE (id)",
		"CREATE TABLE ptspsub_1a PARTITION OF ptspsub_1 FOR VALUES FROM (0) TO (5)",
		"ALTER TABLE ptspsub SET TABLESPACE " + space,
	}
	pool := pgTestPool(t, tree...)
	if _, err := pgShadow(t, pool, "ptsp", "ADD COLUMN c int"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(context.Background(), `SELECT string_agg(c.relname || ' ' || coalesce(s.spcname, '-'), ', ' ORDER BY c.relname) FROM pg_class c
		LEFT JOIN pg_tablespace s ON s.oid = c.reltablespace WHERE c.relnamespace = $1::regnamespace AND c.relname LIKE '%ptsp%osc'`, pgTestSchema).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("_ptsp_1_osc -, _ptsp_2_osc %[1]s, _ptsp_d_osc %[1]s, _ptsp_osc %[1]s", space); got != want {
		t.Errorf("the shadow tree's tablespaces: %s, want %s", got, want)
	}
	if _, err := pgInspect(t, pool, "ptspsub"); err == nil || !strings.Contains(err.Error(), "partition ptspsub_1 is partitioned and in the database's default tablespace") {
		t.Errorf("a partitioned partition in the default tablespace under the root in %s: %v", space, err)
	}
}
