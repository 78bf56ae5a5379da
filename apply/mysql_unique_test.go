package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// TestMySQLApplyNewUnique: under a new unique key, a captured change that
// clashes with a shadow row of another key is written (REPLACE deletes the
// stale row, which a later change writes again) when the original does not
// hold the value twice now, and fails the batch, naming the value and the
// key, when it does, whether the other row is in the shadow already or
// written by the same batch.
func TestMySQLApplyNewUnique(t *testing.T) {
	db, _ := myOpenDB(t)
	ctx := context.Background()
	setup := func(src, dst string) *apply.MySQL {
		testdb.DropMySQLTables(t, db, "uniq_ap_src", "uniq_ap_dst")
		testdb.ExecMySQL(t, db, "CREATE TABLE uniq_ap_src (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL) ENGINE=InnoDB")
		testdb.ExecMySQL(t, db, "CREATE TABLE uniq_ap_dst (id INT NOT NULL PRIMARY KEY, email VARCHAR(20) NULL, UNIQUE KEY uq (email)) ENGINE=InnoDB")
		if src != "" {
			testdb.ExecMySQL(t, db, "INSERT INTO uniq_ap_src VALUES "+src)
		}
		if dst != "" {
			testdb.ExecMySQL(t, db, "INSERT INTO uniq_ap_dst VALUES "+dst)
		}
		p := myLoadPlan(t, db, "uniq_ap_src", "uniq_ap_dst")
		p.NewUnique = []table.UniqueKey{{Name: "uq", Columns: []string{"email"}, Shadow: []string{"email"}}}
		return apply.NewMySQL(db, p)
	}
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, "uniq_ap_src", "uniq_ap_dst", "_uniq_ap_src_ghc") })
	ins := func(id int64, email any) cdc.Change { return cdc.Change{Op: cdc.Insert, After: cdc.Row{id, email}} }
	upd := func(id int64, from, to any) cdc.Change {
		return cdc.Change{Op: cdc.Update, Before: cdc.Row{id, from}, After: cdc.Row{id, to}}
	}

	// Row 1 was inserted with 'x', then gave it up; row 2 then took it, and a
	// chunk copied row 2: the original never held 'x' twice.
	a := setup("(1, 'w'), (2, 'x'), (3, NULL)", "(2, 'x')")
	if err := a.Apply(ctx, []cdc.Change{ins(1, "x"), ins(3, nil), upd(1, "x", "w"), upd(2, "y", "x")}); err != nil {
		t.Fatalf("moved values: %v", err)
	}
	mySameTables(t, db, myLoadPlan(t, db, "uniq_ap_src", "uniq_ap_dst"), "uniq_ap_src", "uniq_ap_dst")

	for _, c := range []struct {
		name, src, dst string
		changes        []cdc.Change
	}{
		{"with a shadow row", "(1, 'x'), (2, 'X')", "(1, 'x')", []cdc.Change{ins(2, "X")}},
		{"within the batch", "(1, 'x'), (2, 'X')", "", []cdc.Change{ins(1, "x"), ins(2, "X")}},
	} {
		a := setup(c.src, c.dst)
		err := a.Apply(ctx, c.changes)
		var dup *table.DuplicateError
		if !errors.As(err, &dup) {
			t.Fatalf("%s: %v, want a DuplicateError", c.name, err)
		}
		for _, want := range []string{"uq (email)", "in 2 rows", "applying captured changes"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", c.name, err, want)
			}
		}
	}
}
