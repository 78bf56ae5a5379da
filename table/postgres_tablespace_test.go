package table

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"osc/internal/testdb"
)

// testTablespace returns the tablespace OSC_TEST_TABLESPACE names, other
// than the database's default, or skips the test: the shared sandbox has
// none, since CREATE TABLESPACE on its primary, replayed by the standby on
// the same host and path, would remove the primary's directory.
func testTablespace(t *testing.T) string {
	t.Helper()
	space := os.Getenv("OSC_TEST_TABLESPACE")
	if space == "" {
		t.Skip("OSC_TEST_TABLESPACE names no tablespace other than the database's default")
	}
	return space
}

// defaultTablespaceConfig is the test server's configuration with the
// sessions' default_tablespace set to space.
func defaultTablespaceConfig(t *testing.T, space string) *pgxpool.Config {
	t.Helper()
	cfg := testdb.PostgresConfig(t)
	cfg.ConnConfig.RuntimeParams["default_tablespace"] = space
	return cfg
}

// TestPostgresShadowDefaultTablespace: a session whose default_tablespace
// names another tablespace (postgresql.conf, ALTER ROLE or DATABASE … SET)
// makes the shadow and the indexes LIKE clones where the original's are,
// the database's default tablespace, as a plain ALTER TABLE rewrites them in
// place; a unique key the --alter adds goes to default_tablespace, as the
// plain ALTER's does. Like TestPostgresPartitionTablespaces it needs the
// tablespace OSC_TEST_TABLESPACE (other than the database's default).
func TestPostgresShadowDefaultTablespace(t *testing.T) {
	space := testTablespace(t)
	pool := testdb.OpenPostgres(t, defaultTablespaceConfig(t, space))
	testdb.ResetPostgresSchema(t, pool, pgTestSchema)
	// The table is moved to the database's default tablespace, where one
	// made before default_tablespace was set is.
	testdb.ExecPostgresIn(t, pool, pgTestSchema, "SET search_path = "+pgTestSchema,
		"CREATE TABLE tsd (id int PRIMARY KEY, a int, b text UNIQUE)",
		"CREATE INDEX tsd_a ON tsd (a)",
		"ALTER TABLE tsd SET TABLESPACE pg_default",
		"ALTER INDEX tsd_pkey SET TABLESPACE pg_default",
		"ALTER INDEX tsd_b_key SET TABLESPACE pg_default",
		"ALTER INDEX tsd_a SET TABLESPACE pg_default")
	sh, err := pgShadow(t, pool, "tsd", "ALTER COLUMN a TYPE bigint, ADD CONSTRAINT tsd_a_id UNIQUE (a, id)")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(context.Background(), `SELECT string_agg(CASE c.relkind WHEN 't' THEN 'toast' ELSE c.relname END || ' ' || coalesce(s.spcname, '-'), ', ' ORDER BY c.relname)
		FROM pg_class c LEFT JOIN pg_tablespace s ON s.oid = c.reltablespace
		WHERE c.oid = $1::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass)
			OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass)`, pgTestSchema+"._tsd_osc").Scan(&got); err != nil {
		t.Fatal(err)
	}
	// The shadow's indexes have their LIKE names until the cut-over.
	if want := "_tsd_osc -, _tsd_osc_b_key -, _tsd_osc_pkey -, toast -, tsd_a_id " + space; got != want {
		t.Errorf("the shadow's tablespaces: %s, want %s", got, want)
	}
	if len(sh.Indexes) != 1 || sh.Indexes[0].Tablespace != "" {
		t.Errorf("the index built after the copy: %+v, want tsd_a in the database's default tablespace", sh.Indexes)
	}
}
