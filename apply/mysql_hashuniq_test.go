package apply_test

import (
	"context"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
)

// myHashMoves are batches that move a value of a long (hash) unique key
// from one row to another, each leaving the shadow as the original (src)
// from the shadow dst. MariaDB's REPLACE under READ COMMITTED fails with a
// duplicate-key error where the row it writes meets its own old version by
// the primary key and another row by the hash key (10.11).
var myHashMoves = []struct {
	name, src, dst string
	batches        [][]cdc.Change
}{
	// myCollapse writes row 1 (its last write) before row 2's last one: row
	// 1 takes 'y' while the shadow's row 2 still holds it.
	{"a value given up and taken, the giver changed again", "(1, 'y'), (2, 'w')", "(1, 'x'), (2, 'y')",
		[][]cdc.Change{{myUpd(2, "y", "z"), myUpd(1, "x", "y"), myUpd(2, "z", "w")}}},
	// The copy read row 2 after it took 'x', the applier is behind: row
	// 1's change that gave it 'x' first, then row 1 gives it up.
	{"a change behind the copy's newer row", "(1, 'c'), (2, 'x')", "(1, 'a'), (2, 'x')",
		[][]cdc.Change{{myUpd(1, "a", "x")}, {myUpd(1, "x", "c")}, {myUpd(2, "b", "x")}}},
	// Two values swapped through a third, in one batch.
	{"a swap in one batch", "(1, 'y'), (2, 'x')", "(1, 'x'), (2, 'y')",
		[][]cdc.Change{{myUpd(1, "x", "t"), myUpd(2, "y", "x"), myUpd(1, "t", "y")}}},
}

// TestMySQLApplyHashUniqueMoves applies myHashMoves to a shadow that keeps
// the original's own long unique key (a UNIQUE over a TEXT column).
func TestMySQLApplyHashUniqueMoves(t *testing.T) {
	for _, c := range myHashMoves {
		t.Run(c.name, func(t *testing.T) {
			db, _ := myOpenDB(t)
			testdb.DropMySQLTables(t, db, "hu_ap_src", "hu_ap_dst")
			t.Cleanup(func() { testdb.DropMySQLTables(t, db, "hu_ap_src", "hu_ap_dst", "_hu_ap_src_ghc") })
			for _, name := range []string{"hu_ap_src", "hu_ap_dst"} {
				testdb.ExecMySQL(t, db, "CREATE TABLE "+name+" (id INT NOT NULL PRIMARY KEY, h TEXT NULL, UNIQUE KEY uh (h)) ENGINE=InnoDB")
			}
			testdb.ExecMySQL(t, db, "INSERT INTO hu_ap_src VALUES "+c.src)
			testdb.ExecMySQL(t, db, "INSERT INTO hu_ap_dst VALUES "+c.dst)
			p := myLoadPlan(t, db, "hu_ap_src", "hu_ap_dst")
			a := apply.NewMySQL(db, p)
			for i, b := range c.batches {
				if err := a.Apply(context.Background(), b); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			mySameTables(t, db, p, "hu_ap_src", "hu_ap_dst")
		})
	}
}

// TestMySQLApplyNewUniqueHashMoves applies myHashMoves to a shadow whose
// long unique key is new (the --alter adds it over a TEXT column).
func TestMySQLApplyNewUniqueHashMoves(t *testing.T) {
	for _, c := range myHashMoves {
		t.Run(c.name, func(t *testing.T) {
			a := myAsideSetupColumn(t, "TEXT", c.src, c.dst)
			if err := myApplyAll(t, a, c.batches...); err != nil {
				t.Fatalf("final restore: %v", err)
			}
			myCheckSame(t)
		})
	}
}
