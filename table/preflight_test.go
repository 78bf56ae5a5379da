package table

import (
	"context"
	"testing"
	"time"

	"osc/internal/testdb"
)

// TestReadMySQLTableIO: the per-table write count read from
// performance_schema is valid SQL on the server (MySQL 8 has
// performance_schema on by default, so the preflight report depends on it
// there; the sandbox's MariaDB has it off, but its tables are defined and
// answer with no rows).
func TestReadMySQLTableIO(t *testing.T) {
	srv := testdb.MySQL(t)
	db := testdb.OpenMySQL(t, srv.Config(t, ""))
	if _, err := readMySQLTableIO(context.Background(), db, "review7_no_such_schema", "t"); err != nil {
		t.Fatal(err)
	}
}

// TestReadPostgresTransactionsHidden: a role without pg_read_all_stats sees
// other roles' sessions without their transaction start, so their
// transactions cannot be listed: the report must say so, not "none open".
func TestReadPostgresTransactionsHidden(t *testing.T) {
	const role, tbl = "review7_preflight_ro", "review7_preflight_t"
	admin := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	ctx := context.Background()
	testdb.ExecPostgres(t, admin,
		"DROP TABLE IF EXISTS public."+tbl, "DROP ROLE IF EXISTS "+role,
		"CREATE ROLE "+role+" LOGIN", "CREATE TABLE public."+tbl+" (id int PRIMARY KEY)")
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP TABLE IF EXISTS public."+tbl)
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	// A transaction of the superuser, open for more than a second.
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM public."+tbl); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)

	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.User = role
	pool := testdb.OpenPostgres(t, cfg)
	ts, err := ReadPostgresTransactions(ctx, pool, "public", tbl, 3)
	if err == nil {
		t.Errorf("transactions %+v and no error: the superuser's open transaction is hidden from %s, and the report would say none is open", ts, role)
	}
}

// TestReadPostgresTableSizeNeverAnalyzed: a table never vacuumed or
// analyzed has no row estimate (reltuples -1), which is not "0 rows".
func TestReadPostgresTableSizeNeverAnalyzed(t *testing.T) {
	const schema = "review7_preflight_size"
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)",
		"INSERT INTO "+schema+".t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
	s, err := ReadPostgresTableSize(context.Background(), pool, schema, "t")
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != -1 || s.Data <= 0 {
		t.Errorf("rows %d, data %d bytes: want no estimate (-1) and the data's size", s.Rows, s.Data)
	}
	testdb.ExecPostgres(t, pool, "ANALYZE "+schema+".t")
	if s, err = ReadPostgresTableSize(context.Background(), pool, schema, "t"); err != nil || s.Rows != 5000 {
		t.Errorf("analyzed: rows %d (%v), want 5000", s.Rows, err)
	}
}

// TestReadPostgresTableSizePartitioned: a partitioned table's rows are its
// leaf partitions'. ANALYZE of the root gives the root and every partition
// that is partitioned in turn a row estimate of the rows under it too, which
// must not be added to the leaves'.
func TestReadPostgresTableSizePartitioned(t *testing.T) {
	const schema = "partition_size"
	pool := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ResetPostgresSchema(t, pool, schema)
	testdb.ExecPostgres(t, pool,
		"CREATE TABLE "+schema+".t (id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (id)",
		"CREATE TABLE "+schema+".t_1 PARTITION OF "+schema+".t FOR VALUES FROM (0) TO (2000) PARTITION BY LIST (k)",
		"CREATE TABLE "+schema+".t_1a PARTITION OF "+schema+".t_1 FOR VALUES IN (1, 2)",
		"CREATE TABLE "+schema+".t_1b PARTITION OF "+schema+".t_1 DEFAULT",
		"CREATE TABLE "+schema+".t_2 PARTITION OF "+schema+".t DEFAULT",
		"INSERT INTO "+schema+".t SELECT g, g % 5 FROM generate_series(1, 3000) g",
		"ANALYZE "+schema+".t")
	s, err := ReadPostgresTableSize(context.Background(), pool, schema, "t")
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 3000 {
		t.Errorf("rows %d, want 3000 (the leaf partitions')", s.Rows)
	}
}
