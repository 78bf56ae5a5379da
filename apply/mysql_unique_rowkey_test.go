package apply_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"osc/apply"
	"osc/cdc"
	"osc/internal/testdb"
	"osc/table"
)

// TestMySQLApplyNewUniqueWidenedKey: an --alter that widens the primary key
// (id) to (id, b) and adds a new unique key (email) plans a shadow whose
// rows are told apart by (id, b) (Plan.RowKey), and an aside table keyed
// the same way. The applier must write a batch that meets no duplicate, put
// aside the row a clash displaces, and the final restore must fail when
// the original holds one email twice, naming the rows by (id, b).
func TestMySQLApplyNewUniqueWidenedKey(t *testing.T) {
	db, _ := myOpenDB(t)
	ctx := context.Background()
	const name = "rv2_uniq_rowkey"
	shadow, changelog, _ := table.MySQLNames(name)
	aside := table.MySQLAsideName(name)
	testdb.DropMySQLTables(t, db, name, shadow, changelog, aside)
	t.Cleanup(func() { testdb.DropMySQLTables(t, db, name, shadow, changelog, aside) })
	testdb.ExecMySQL(t, db, "CREATE TABLE "+name+" (id INT NOT NULL PRIMARY KEY, b INT NOT NULL, email VARCHAR(20) NULL) ENGINE=InnoDB")
	testdb.ExecMySQL(t, db, "INSERT INTO "+name+" VALUES (1, 10, 'x'), (2, 20, 'y')")
	insp, err := table.InspectMySQLTable(ctx, db, "osc_test", name, "DROP PRIMARY KEY, ADD PRIMARY KEY (id, b), ADD UNIQUE KEY uq (email)")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := table.CreateMySQLShadow(ctx, db, insp)
	if err != nil {
		t.Fatal(err)
	}
	if plan.RowKey == nil || len(plan.NewUnique) == 0 {
		t.Fatalf("plan: RowKey %v, new unique keys %v: not the case the test is for", plan.RowKey, plan.NewUnique)
	}
	x, err := table.NewMySQLAside(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	a := apply.NewMySQL(db, plan)
	changes := []cdc.Change{
		{Op: cdc.Insert, After: cdc.Row{int32(1), int32(10), "x"}},
		{Op: cdc.Insert, After: cdc.Row{int32(2), int32(20), "y"}},
	}
	if err := a.Apply(ctx, changes); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + shadow).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("the shadow holds %d rows, want 2", n)
	}
	testdb.ExecMySQL(t, db, "UPDATE "+name+" SET email = 'x' WHERE id = 2")
	if err := a.Apply(ctx, []cdc.Change{{Op: cdc.Update, Before: cdc.Row{int32(2), int32(20), "y"}, After: cdc.Row{int32(2), int32(20), "x"}}}); err != nil {
		t.Fatalf("apply the duplicate: %v", err)
	}
	err = a.Restore(ctx, true)
	var dup *table.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("a row holding the email another holds in the original: %v, want a DuplicateError", err)
	}
	if !strings.Contains(err.Error(), "(keys (1, 10), (2, 20))") {
		t.Errorf("error %q does not name the rows by (id, b)", err)
	}
	// The keys are structured, as PostgreSQL's (postgres_aside_test.go).
	if len(dup.Duplicates) != 1 || !reflect.DeepEqual(dup.Duplicates[0].Keys, [][]string{{"1", "10"}, {"2", "20"}}) || dup.When != table.DuplicateAtCutOver {
		t.Errorf("duplicates %+v met %q, want keys [[1 10] [2 20]] met %q", dup.Duplicates, dup.When, table.DuplicateAtCutOver)
	}
}
