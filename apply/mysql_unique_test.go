package apply_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// myAsideSetup makes the tables of the new-unique applier tests: the
// original uniq_ap_src (rows src), the shadow uniq_ap_dst with a new unique
// key on email (rows dst), and the aside table, and returns the applier.
func myAsideSetup(t *testing.T, src, dst string) *apply.MySQL {
	t.Helper()
	return myAsideSetupColumn(t, "VARCHAR(20)", src, dst)
}

// myAsideSetupColumn is myAsideSetup with email of type col in both tables.
func myAsideSetupColumn(t *testing.T, col, src, dst string) *apply.MySQL {
	t.Helper()
	db, _ := myOpenDB(t)
	ctx := context.Background()
	aside := table.MySQLAsideName("uniq_ap_src")
	testdb.DropMySQLTables(t, db, "uniq_ap_src", "uniq_ap_dst", aside)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, "uniq_ap_src", "uniq_ap_dst", aside, "_uniq_ap_src_ghc") })
	testdb.ExecMySQL(t, db, "CREATE TABLE uniq_ap_src (id INT NOT NULL PRIMARY KEY, email "+col+" NULL) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "CREATE TABLE uniq_ap_dst (id INT NOT NULL PRIMARY KEY, email "+col+" NULL, UNIQUE KEY uq (email)) ENGINE=InnoDB")
	if src != "" {
		testdb.ExecMySQL(t, db, "INSERT INTO uniq_ap_src VALUES "+src)
	}
	if dst != "" {
		testdb.ExecMySQL(t, db, "INSERT INTO uniq_ap_dst VALUES "+dst)
	}
	p := myLoadPlan(t, db, "uniq_ap_src", "uniq_ap_dst")
	var coll string
	if err := db.QueryRow(`SELECT COLLATION_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = 'osc_test' AND TABLE_NAME = 'uniq_ap_dst' AND COLUMN_NAME = 'email'`).Scan(&coll); err != nil {
		t.Fatal(err)
	}
	p.NewUnique = []table.UniqueKey{{Name: "uq", Columns: []string{"email"}, Shadow: []string{"email"}, Collations: []string{coll}}}
	x, err := table.NewMySQLAside(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	a := apply.NewMySQL(db, p)
	a.UseAside(x)
	return a
}

// myApplyAll applies each batch in its own transaction, then restores with
// final set (writes blocked, every change applied).
func myApplyAll(t *testing.T, a *apply.MySQL, batches ...[]cdc.Change) error {
	t.Helper()
	return myApplyAllRestoring(t, a, true, batches...)
}

// myApplyAllRestoring is myApplyAll, restoring between batches only when
// between is set (rows then stay aside across batches until the end).
func myApplyAllRestoring(t *testing.T, a *apply.MySQL, between bool, batches ...[]cdc.Change) error {
	t.Helper()
	ctx := context.Background()
	for i, b := range batches {
		if err := a.Apply(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !between {
			continue
		}
		if err := a.Restore(ctx, false); err != nil {
			t.Fatalf("restore after batch %d: %v", i, err)
		}
	}
	return a.Restore(ctx, true)
}

func myIns(id int64, email any) cdc.Change {
	return cdc.Change{Op: cdc.Insert, After: cdc.Row{id, email}}
}

func myUpd(id int64, from, to any) cdc.Change {
	return cdc.Change{Op: cdc.Update, Before: cdc.Row{id, from}, After: cdc.Row{id, to}}
}

// myCheckSame compares the shadow with the original row by row, and checks
// that no row is left aside.
func myCheckSame(t *testing.T) {
	t.Helper()
	db, _ := myOpenDB(t)
	mySameTables(t, db, myLoadPlan(t, db, "uniq_ap_src", "uniq_ap_dst"), "uniq_ap_src", "uniq_ap_dst")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table.MySQLAsideName("uniq_ap_src")).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows left aside (%v), want none", n, err)
	}
}

// TestMySQLApplyNewUniqueLostRow is the row the reverted clash check lost
// (issue #15): row 1 holds 'v', copied to the shadow; T1 gives row 2 'v'
// too (the original has no unique key on it, so both hold it for a moment),
// T2 moves row 2 on to 'w'. The applier, behind, applies T1 when the
// original is already past T2: its REPLACE displaces row 1, which no later
// change writes again. Row 1 must wait aside and come back.
func TestMySQLApplyNewUniqueLostRow(t *testing.T) {
	a := myAsideSetup(t, "(1, 'v'), (2, 'w')", "(1, 'v'), (2, 'a')")
	if err := myApplyAll(t, a, []cdc.Change{myUpd(2, "a", "v")}, []cdc.Change{myUpd(2, "v", "w")}); err != nil {
		t.Fatalf("final restore: %v", err)
	}
	myCheckSame(t)
}

// TestMySQLApplyNewUniqueTransient: values held twice for a moment, then
// given up by either row, in one batch (a later row of the same REPLACE
// displaces an earlier one) or across batches; a swap; values moved between
// rows; the row aside deleted; a replayed (byte-exact) delete.
func TestMySQLApplyNewUniqueTransient(t *testing.T) {
	for _, c := range []struct {
		name, src, dst string
		batches        [][]cdc.Change
	}{
		{"displaced within the batch, the displacing row moves on", "(1, 'v'), (2, 'd')", "(1, 'a'), (2, 'b')",
			[][]cdc.Change{{myUpd(1, "a", "v"), myUpd(2, "b", "v")}, {myUpd(2, "v", "d")}}},
		{"displaced within the batch, the displaced row moves on", "(1, 'c'), (2, 'v')", "(1, 'a'), (2, 'b')",
			[][]cdc.Change{{myUpd(1, "a", "v"), myUpd(2, "b", "v")}, {myUpd(1, "v", "c")}}},
		{"the row aside moves on", "(1, 'c'), (2, 'v')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{myUpd(2, "a", "v")}, {myUpd(1, "v", "c")}}},
		{"the row aside deleted", "(2, 'v')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{myUpd(2, "a", "v")}, {{Op: cdc.Delete, Before: cdc.Row{int64(1), "v"}}}}},
		{"the row aside deleted by a replay", "(2, 'v')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{myUpd(2, "a", "v")}, {{Op: cdc.Delete, Before: cdc.Row{int64(1), "v"}, Replay: true}}}},
		{"a swap", "(1, 'y'), (2, 'x')", "(1, 'x'), (2, 'y')",
			[][]cdc.Change{{myUpd(1, "x", "y")}, {myUpd(2, "y", "x")}}},
		{"moved values", "(1, 'w'), (2, 'x'), (3, NULL)", "(2, 'x')",
			[][]cdc.Change{{myIns(1, "x"), myIns(3, nil), myUpd(1, "x", "w"), myUpd(2, "y", "x")}}},
		{"a collation's equal values", "(1, 'v'), (2, 'w')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{myUpd(2, "a", "V")}, {myUpd(2, "V", "w")}}},
		{"displaced within the batch across a replayed delete", "(1, 'v'), (2, 'd')", "(1, 'a'), (2, 'b'), (3, 'c')",
			[][]cdc.Change{{myUpd(1, "a", "v"), {Op: cdc.Delete, Before: cdc.Row{int64(3), "c"}, Replay: true}, myUpd(2, "b", "v")},
				{myUpd(2, "v", "d")}}},
		{"a key change takes the value", "(1, 'v'), (5, 'w')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{{Op: cdc.Update, Before: cdc.Row{int64(2), "a"}, After: cdc.Row{int64(5), "v"}}}, {myUpd(5, "v", "w")}}},
		{"a key change moves the row aside", "(1, 'w'), (6, 'v')", "(1, 'v'), (2, 'a')",
			[][]cdc.Change{{myUpd(2, "a", "v")}, {{Op: cdc.Update, Before: cdc.Row{int64(1), "v"}, After: cdc.Row{int64(6), "v"}}},
				{myUpd(2, "v", "w")}, {{Op: cdc.Update, Before: cdc.Row{int64(2), "w"}, After: cdc.Row{int64(1), "w"}}}}},
		{"three rows, one value", "(1, 'v'), (2, 'x'), (3, 'y')", "(1, 'v'), (2, 'b'), (3, 'c')",
			[][]cdc.Change{{myUpd(2, "b", "v")}, {myUpd(3, "c", "v")}, {myUpd(3, "v", "y"), myUpd(2, "v", "x")}}},
	} {
		// A TEXT's unique key is a long (hash) one, whose batches run
		// under REPEATABLE READ (apply.MySQL's isolation).
		for _, col := range []string{"VARCHAR(20)", "TEXT"} {
			for _, between := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/restore_between=%v", c.name, col, between), func(t *testing.T) {
					a := myAsideSetupColumn(t, col, c.src, c.dst)
					if err := myApplyAllRestoring(t, a, between, c.batches...); err != nil {
						t.Fatalf("final restore: %v", err)
					}
					myCheckSame(t)
				})
			}
		}
	}
}

// TestMySQLApplyNewUniqueDuplicate: a value the original holds twice once
// every change is applied fails the final restore, naming the value, the
// key and the rows' keys, whether the other row was in the shadow already
// or written by the same batch; a restore before that leaves the row aside.
func TestMySQLApplyNewUniqueDuplicate(t *testing.T) {
	for _, c := range []struct {
		name, src, dst string
		changes        []cdc.Change
	}{
		{"with a shadow row", "(1, 'x'), (2, 'X')", "(1, 'x')", []cdc.Change{myIns(2, "X")}},
		{"within the batch", "(1, 'x'), (2, 'X')", "", []cdc.Change{myIns(1, "x"), myIns(2, "X")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := myAsideSetup(t, c.src, c.dst)
			ctx := context.Background()
			if err := a.Apply(ctx, c.changes); err != nil {
				t.Fatal(err)
			}
			if err := a.Restore(ctx, false); err != nil {
				t.Fatalf("restore before the end: %v", err)
			}
			err := a.Restore(ctx, true)
			var dup *table.DuplicateError
			if !errors.As(err, &dup) {
				t.Fatalf("%v, want a DuplicateError", err)
			}
			for _, want := range []string{"uq (email)", "in 2 rows (keys (1), (2))", table.DuplicateAtCutOver} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestMySQLApplyNewUniqueCollation: the new unique key's column is in
// another character set than the connection's, under a collation that is
// not the character set's default (utf8mb3_bin, latin1_general_cs; also
// a case-insensitive one, whose equal values must displace). The applier
// writes its values converted to the character set (whose default
// collation the conversion carries); the look for the shadow rows holding
// a written value must compare under the column's collation, as the index
// does, not fail on a mix of collations nor miss a row.
func TestMySQLApplyNewUniqueCollation(t *testing.T) {
	for _, col := range []string{
		"VARCHAR(20) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin",
		"VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_general_cs",
		"VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_general_ci",
	} {
		t.Run(col, func(t *testing.T) {
			a := myAsideSetupColumn(t, col, "(1, 'v'), (2, 'w')", "(1, 'v'), (2, 'a')")
			to := "v"
			if strings.HasSuffix(col, "_ci") {
				to = "V"
			}
			if err := myApplyAll(t, a, []cdc.Change{myUpd(2, "a", to)}, []cdc.Change{myUpd(2, to, "w")}); err != nil {
				t.Fatalf("final restore: %v", err)
			}
			myCheckSame(t)
		})
	}
}

// TestMySQLApplyNewUniqueEnum: a new unique key over an ENUM of another
// character set than the connection's, whose values the applier writes as
// their labels (the binlog sends their numbers).
func TestMySQLApplyNewUniqueEnum(t *testing.T) {
	for _, col := range []string{
		"ENUM('a', 'v', 'w') CHARACTER SET latin1",
		"ENUM('a', 'v', 'w') CHARACTER SET latin1 COLLATE latin1_general_cs",
		"ENUM('a', 'v', 'w')",
	} {
		t.Run(col, func(t *testing.T) {
			a := myAsideSetupColumn(t, col, "(1, 'v'), (2, 'w')", "(1, 'v'), (2, 'a')")
			if err := myApplyAll(t, a, []cdc.Change{myUpd(2, int64(1), int64(2))}, []cdc.Change{myUpd(2, int64(2), int64(3))}); err != nil {
				t.Fatalf("final restore: %v", err)
			}
			myCheckSame(t)
		})
	}
}
