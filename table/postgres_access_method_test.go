package table

import (
	"context"
	"testing"

	"osc/internal/testdb"
)

// TestPostgresShadowAccessMethod: the shadow and its partitions get the
// original's table access method. CREATE TABLE … LIKE and PARTITION OF copy
// none: they took default_table_access_method, and a table in another
// method came out of osc in heap, where a plain ALTER TABLE keeps it. The
// test's method is heap under another name, made for the test and dropped
// after it.
func TestPostgresShadowAccessMethod(t *testing.T) {
	const method = "osc_test_heap2"
	admin := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ExecPostgres(t, admin, "DROP ACCESS METHOD IF EXISTS "+method, "CREATE ACCESS METHOD "+method+" TYPE TABLE HANDLER heap_tableam_handler")
	// Registered before pgTestPool's schema drop, so run after it.
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ACCESS METHOD "+method); err != nil {
			t.Errorf("drop the test's access method: %v", err)
		}
	})
	pool := pgTestPool(t,
		"CREATE TABLE tam (id int PRIMARY KEY, a int) USING "+method,
		"CREATE TABLE ptam (id int PRIMARY KEY, a int) PARTITION BY RANGE (id)",
		"CREATE TABLE ptam_1 PARTITION OF ptam FOR VALUES FROM (0) TO (10) USING "+method,
		"CREATE TABLE ptam_2 PARTITION OF ptam FOR VALUES FROM (10) TO (20)",
		"SET default_table_access_method = "+method,
		"CREATE TABLE ptam_3 PARTITION OF ptam FOR VALUES FROM (20) TO (30) PARTITION BY RANGE (id)",
		"RESET default_table_access_method",
		"CREATE TABLE ptam_3a PARTITION OF ptam_3 FOR VALUES FROM (20) TO (30) USING heap")
	for _, tc := range []struct{ table, want string }{
		{"tam", "_tam_osc " + method},
		{"ptam", "_ptam_1_osc " + method + ", _ptam_2_osc heap, _ptam_3_osc -, _ptam_3a_osc heap, _ptam_osc -"},
	} {
		if _, err := pgShadow(t, pool, tc.table, "ALTER COLUMN a TYPE bigint"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(context.Background(), `SELECT string_agg(c.relname || ' ' || coalesce(am.amname, '-'), ', ' ORDER BY c.relname)
			FROM pg_class c LEFT JOIN pg_am am ON am.oid = c.relam
			WHERE c.relnamespace = $1::regnamespace AND c.relname LIKE '\_%' AND c.relkind IN ('r', 'p') AND c.relname LIKE $2`,
			pgTestSchema, "%"+tc.table+"%").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: the shadow's access methods: %s, want %s", tc.table, got, tc.want)
		}
	}
}
