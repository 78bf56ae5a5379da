package table

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

// pgWantNativeCopy wants the native plan of alter on the table to copy it,
// because it rewrites it.
func pgWantNativeCopy(t *testing.T, pool *pgxpool.Pool, table, alter string) {
	t.Helper()
	in, err := pgInspect(t, pool, table)
	if err != nil {
		t.Fatal(err)
	}
	plan, why, err := PostgresNativePlan(context.Background(), pool, in, alter, time.Second)
	switch {
	case err != nil:
		t.Errorf("%s: %v", alter, err)
	case plan != nil && plan.Steps != nil || !strings.HasPrefix(why, "it rewrites the table"):
		t.Errorf("%s on %s: %q (plan %+v), want a copy: it rewrites the table", alter, table, why, plan)
	}
}

// TestPostgresNativePlanAccessMethod: the scratch table the native plan
// asks the server with is made LIKE the original, which copies no access
// method: made in heap, SET ACCESS METHOD heap changed nothing on it and
// passed for catalog-only, and osc ran it natively, rewriting a table in
// another method under an ACCESS EXCLUSIVE lock held for the whole rewrite.
func TestPostgresNativePlanAccessMethod(t *testing.T) {
	const method = "osc_test_heap3"
	admin := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	testdb.ExecPostgres(t, admin, "DROP ACCESS METHOD IF EXISTS "+method, "CREATE ACCESS METHOD "+method+" TYPE TABLE HANDLER heap_tableam_handler")
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ACCESS METHOD "+method); err != nil {
			t.Errorf("drop the test's access method: %v", err)
		}
	})
	pool := pgTestPool(t, "CREATE TABLE nam (id int PRIMARY KEY, a int) USING "+method,
		"INSERT INTO nam SELECT g, g FROM generate_series(1, 10) g")
	pgWantNativeCopy(t, pool, "nam", "SET ACCESS METHOD heap")
	// Dropped with the schema, before the access method.
	testdb.ExecPostgres(t, pool, "DROP TABLE "+pgTestSchema+".nam")
}

// TestPostgresNativePlanTablespace: the same for SET TABLESPACE, with the
// scratch table made in default_tablespace: a table in another tablespace
// moved to the default one, or one in the default moved to the one
// default_tablespace names, was planned catalog-only and moved natively,
// its files copied under an ACCESS EXCLUSIVE lock. It needs a tablespace
// other than the database's default, OSC_TEST_TABLESPACE (see
// TestPostgresShadowDefaultTablespace).
func TestPostgresNativePlanTablespace(t *testing.T) {
	space := testTablespace(t)
	pool := testdb.OpenPostgres(t, defaultTablespaceConfig(t, space))
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "SET search_path = "+pgTestSchema,
		"CREATE TABLE nts_in (id int PRIMARY KEY, a int) TABLESPACE "+QuotePostgres(space),
		"CREATE TABLE nts_def (id int PRIMARY KEY, a int) TABLESPACE pg_default")
	pgWantNativeCopy(t, pool, "nts_in", "SET TABLESPACE pg_default")
	pgWantNativeCopy(t, pool, "nts_def", "SET TABLESPACE "+QuotePostgres(space))
	// And from sessions whose default_tablespace is the database's.
	plain := testdb.OpenPostgres(t, testdb.PostgresConfig(t))
	pgWantNativeCopy(t, plain, "nts_in", "SET TABLESPACE pg_default")
	// A partitioned table's tablespace is where its new partitions go:
	// moving it to the default one changes the catalog only.
	testdb.ExecPostgresIn(t, plain, pgTestSchema,
		"CREATE TABLE nts_p (id int PRIMARY KEY, a int) PARTITION BY RANGE (id) TABLESPACE "+QuotePostgres(space),
		"CREATE TABLE nts_p1 PARTITION OF nts_p FOR VALUES FROM (0) TO (100)")
	in, err := pgInspect(t, plain, "nts_p")
	if err != nil {
		t.Fatal(err)
	}
	if plan, why, err := PostgresNativePlan(context.Background(), plain, in, "SET TABLESPACE pg_default", time.Second); err != nil || plan == nil || len(plan.Steps) != 1 {
		t.Errorf("SET TABLESPACE pg_default on a partitioned table: %q (plan %+v, %v), want native", why, plan, err)
	}
}
