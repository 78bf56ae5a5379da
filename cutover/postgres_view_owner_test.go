package cutover

import (
	"context"
	"testing"
	"time"
)

// LOCK TABLE on a view locks what the view reads with its owner's rights,
// even for a superuser: a view owned by a role that may only read the
// original is left out of the attempt's lock (its CREATE OR REPLACE locks
// it alone), or every attempt fails with "permission denied".
func TestPostgresCutOverViewOwnerReadsOnly(t *testing.T) {
	pool := pgTestPool(t,
		"CREATE TABLE acct (id int PRIMARY KEY, name text)",
		"INSERT INTO acct SELECT i, 'n' FROM generate_series(1, 10) i",
		"GRANT USAGE ON SCHEMA "+pgTestSchema+" TO "+pgTestRole,
		"GRANT SELECT ON acct TO "+pgTestRole,
		"CREATE VIEW acct_v AS SELECT id, name FROM acct",
		"ALTER VIEW acct_v OWNER TO "+pgTestRole,
	)
	sh := pgTestShadow(t, pool, "acct", "ADD COLUMN extra int")
	err := Postgres(context.Background(), pool, sh.Plan, PostgresOptions{Renames: sh.Renames, LockTimeout: time.Second, Retries: 4}, nil,
		func(context.Context) error { return nil })
	if err != nil {
		t.Fatalf("cut-over with a view its owner only reads: %v", err)
	}
	if !pgQuery[bool](t, pool, "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '"+pgTestSchema+".acct'::regclass AND attname = 'extra')") {
		t.Error("the tables were not swapped")
	}
	if !pgQuery[bool](t, pool, `SELECT EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
		WHERE r.ev_class = '`+pgTestSchema+`.acct_v'::regclass AND d.refobjid = '`+pgTestSchema+`.acct'::regclass)`) {
		t.Error("the view does not read the new table")
	}
	if owner := pgQuery[string](t, pool, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = '"+pgTestSchema+".acct_v'::regclass"); owner != pgTestRole {
		t.Errorf("the view's owner is %s, want %s", owner, pgTestRole)
	}
}
