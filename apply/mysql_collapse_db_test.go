package apply_test

import (
	"context"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// TestMySQLCollapsedBatch applies, in one batch, changes that rewrite,
// delete and re-create rows, change keys (also only in case, which the key's
// collation ignores), and move a unique value between rows, swapping it via
// NULL: the batch writes only what they leave (deletes first), and the shadow
// must equal the table, as after applying them one by one.
func TestMySQLCollapsedBatch(t *testing.T) {
	db, cfg := myOpenDB(t)
	const orig, shadow = "applyspeed_collapse", "_applyspeed_collapse_gho"
	testdb.DropMySQLTables(t, db, orig, shadow)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, orig, shadow, "_"+orig+"_ghc") })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+orig+` (k VARCHAR(10) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY,
		u INT NULL UNIQUE, v VARCHAR(20) NOT NULL)`)
	testdb.ExecMySQL(t, db, "CREATE TABLE "+shadow+" LIKE "+orig)
	testdb.ExecMySQL(t, db, "INSERT INTO "+orig+" VALUES ('a', 1, 'a0'), ('b', 2, 'b0'), ('c', 3, 'c0'), ('d', 4, 'd0'), ('e', NULL, 'e0')")
	testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" SELECT * FROM "+orig)
	p := myLoadPlan(t, db, orig, shadow)
	src := myStartSource(t, db, cfg, p)
	ctx := context.Background()
	for _, q := range []string{
		"UPDATE " + orig + " SET v = 'a1' WHERE k = 'a'",
		"DELETE FROM " + orig + " WHERE k = 'a'",
		"INSERT INTO " + orig + " VALUES ('A', 1, 'A1')", // re-created, another case, its old unique value
		"UPDATE " + orig + " SET v = 'A2' WHERE k = 'A'",
		"UPDATE " + orig + " SET k = 'B' WHERE k = 'b'",  // a key change in case only
		"UPDATE " + orig + " SET u = NULL WHERE k = 'c'", // swap c's and d's unique values via NULL
		"UPDATE " + orig + " SET u = 3 WHERE k = 'd'",
		"UPDATE " + orig + " SET u = 4 WHERE k = 'c'",
		"UPDATE " + orig + " SET k = 'f', v = 'f1' WHERE k = 'e'", // a key change to a new key
		"INSERT INTO " + orig + " VALUES ('e', 5, 'e1')",          // the old key re-used
		"DELETE FROM " + orig + " WHERE k = 'e'",
		"INSERT INTO " + orig + " VALUES ('g', 6, 'g1')",
		"DELETE FROM " + orig + " WHERE k = 'g'",
		"UPDATE " + orig + " SET k = 'b', u = 7 WHERE k = 'B'", // and back, with a new unique value
		"INSERT INTO " + orig + " VALUES ('h', 2, 'h1')",       // b's old unique value
	} {
		testdb.ExecMySQL(t, db, q)
	}
	if err := src.EmitMarker(ctx, "cb"); err != nil {
		t.Fatal(err)
	}
	changes := myReadUntil(t, src, "cb")
	if err := apply.NewMySQL(db, p).Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	mySameTables(t, db, p, orig, shadow)
	for i := range changes {
		// Every suffix of the batch too: the shadow then holds the rows
		// as they were before the suffix's first change.
		testdb.ExecMySQL(t, db, "DELETE FROM "+shadow)
		testdb.ExecMySQL(t, db, "INSERT INTO "+shadow+" VALUES ('a', 1, 'a0'), ('b', 2, 'b0'), ('c', 3, 'c0'), ('d', 4, 'd0'), ('e', NULL, 'e0')")
		a := apply.NewMySQL(db, p)
		for _, c := range changes[:i] {
			if err := a.Apply(ctx, []cdc.Change{c}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Apply(ctx, changes[i:]); err != nil {
			t.Fatalf("the batch from change %d: %v", i, err)
		}
		mySameTables(t, db, p, orig, shadow)
	}
}
