package apply_test

import (
	"context"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// TestMySQLApplyKeyCollation: a key column in another character set than
// the connection's, under a collation that is not the set's default
// (latin1_general_cs). The applier writes its values through CONVERT(…
// USING latin1), which carries latin1's default collation with the
// column's coercibility: compared with the key as it is, the server refused
// the mix ("Illegal mix of collations (latin1_general_cs,IMPLICIT) and
// (latin1_swedish_ci,IMPLICIT)"), and the first delete or key change failed
// the run, where a plain ALTER succeeds (myKeyCompare).
func TestMySQLApplyKeyCollation(t *testing.T) {
	db, _ := myOpenDB(t)
	ctx := context.Background()
	testdb.DropMySQLTables(t, db, "kcoll_src", "kcoll_dst")
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, "kcoll_src", "kcoll_dst", "_kcoll_src_ghc") })
	const col = "VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_general_cs NOT NULL"
	testdb.ExecMySQL(t, db, "CREATE TABLE kcoll_src (id "+col+" PRIMARY KEY, v INT) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE kcoll_dst (id "+col+" PRIMARY KEY, v INT) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO kcoll_src VALUES ('b', 2), ('C', 4)")
	testdb.ExecMySQL(t, db, "INSERT INTO kcoll_dst VALUES ('a', 1), ('b', 2), ('c', 3)")
	p := myLoadPlan(t, db, "kcoll_src", "kcoll_dst")
	a := apply.NewMySQL(db, p)
	if err := a.Apply(ctx, []cdc.Change{
		{Op: cdc.Delete, Before: cdc.Row{"a", int64(1)}},
		{Op: cdc.Update, Before: cdc.Row{"c", int64(3)}, After: cdc.Row{"C", int64(4)}},
	}); err != nil {
		t.Fatal(err)
	}
	mySameTables(t, db, p, "kcoll_src", "kcoll_dst")
}
